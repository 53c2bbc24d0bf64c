// Lab suite (needs root and the SR-IOV lab): sriovctl against real igb NICs,
// checked against what sysfs and `ip -j -d link` say directly.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { sriovctl } from '../helpers/cli.js';
import { labPfs } from './lab-host.js';

interface RawVf {
  vf: number;
  address: string;
  vlan_list?: Array<{ vlan?: number; qos?: number }>;
  spoofchk?: boolean;
  trust?: boolean;
  rate?: { max_tx: number };
}

const ipLink = (pf: string): { address: string; mtu: number; vfinfo_list?: RawVf[] } =>
  JSON.parse(execFileSync('ip', ['-j', '-d', 'link', 'show', 'dev', pf], { encoding: 'utf8' }))[0];
const pciOf = (pf: string) => execFileSync('readlink', ['-f', `/sys/class/net/${pf}/device`], { encoding: 'utf8' }).trim().split('/').pop()!;
const sysfs = (pci: string, attr: string) => readFileSync(`/sys/bus/pci/devices/${pci}/${attr}`, 'utf8').trim();

/** Everything a bad request could have touched, read straight from the kernel. */
function snapshot(pf: string): string {
  const pci = pciOf(pf);
  return JSON.stringify([sysfs(pci, 'sriov_numvfs'), sysfs(pci, 'sriov_drivers_autoprobe'), ipLink(pf)]);
}

async function ok(args: string[]): Promise<string> {
  const r = await sriovctl(args);
  assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('sriovctl in the SR-IOV lab', () => {
  let pf: string;
  before(async () => {
    [pf] = (await labPfs()) as [string];
  });

  it('inventory matches sysfs and ip -j', async () => {
    await ok(['pf', 'set', pf, '--num-vfs', '3']);
    await ok(['vf', 'set', pf, '0', '--mac', '02:5f:00:00:01:00', '--vlan', '100', '--qos', '2']);
    const inv = JSON.parse(await ok(['host', 'inventory', '-o', 'json']));
    assert.equal(typeof inv.hostname, 'string');
    const info = inv.pfs.find((p: { name: string }) => p.name === pf);
    const pci = pciOf(pf);
    const raw = ipLink(pf);
    assert.equal(info.pciAddress, pci);
    assert.equal(info.totalVfs, Number(sysfs(pci, 'sriov_totalvfs')));
    assert.equal(info.numVfs, Number(sysfs(pci, 'sriov_numvfs')));
    assert.equal(info.mac, raw.address);
    assert.equal(info.mtu, raw.mtu);
    assert.equal(info.vfs.length, 3);
    for (const vf of info.vfs) {
      const r = raw.vfinfo_list!.find((x) => x.vf === vf.index)!;
      assert.equal(vf.mac, r.address);
      assert.equal(vf.vlan, r.vlan_list?.[0]?.vlan ?? 0);
      assert.equal(vf.qos, r.vlan_list?.[0]?.qos ?? 0);
      assert.equal(vf.spoofChk, r.spoofchk);
      assert.equal(vf.trust, r.trust);
      assert.equal(vf.pciAddress, execFileSync('readlink', ['-f', `/sys/bus/pci/devices/${pci}/virtfn${vf.index}`], { encoding: 'utf8' }).trim().split('/').pop());
      const group = execFileSync('readlink', [`/sys/bus/pci/devices/${vf.pciAddress}/iommu_group`], { encoding: 'utf8' }).trim().split('/').pop();
      assert.equal(String(vf.iommuGroup), group);
    }
    assert.equal(info.vfs[0].mac, '02:5f:00:00:01:00');
    assert.equal(info.vfs[0].vlan, 100);
  });

  it('changes the VF count 3 → 5 through 0', async () => {
    await ok(['pf', 'set', pf, '--num-vfs', '5']);
    assert.equal(sysfs(pciOf(pf), 'sriov_numvfs'), '5');
    assert.equal(ipLink(pf).vfinfo_list!.length, 5);
  });

  it('refuses link state on igb as UNSUPPORTED with exit 2, applying nothing', async () => {
    const before = snapshot(pf);
    const r = await sriovctl(['vf', 'set', pf, '1', '--mac', '02:5f:00:00:01:01', '--link-state', 'enable']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /UNSUPPORTED/);
    assert.equal(snapshot(pf), before);
  });

  it('refuses every kind of bad input with exit 2 and leaves the host unchanged', async () => {
    const bad: string[][] = [
      ['vf', 'set', pf, '0', '--mac', '01:00:5e:00:00:01'],
      ['vf', 'set', pf, '0', '--mac', 'ff:ff:ff:ff:ff:ff'],
      ['vf', 'set', pf, '0', '--mac', '02:00:00:00:00'],
      ['vf', 'set', pf, '0', '--vlan', '4095'],
      ['vf', 'set', pf, '0', '--vlan', '-1'],
      ['vf', 'set', pf, '0', '--vlan', '10', '--qos', '8'],
      ['vf', 'set', pf, '0', '--qos', '3'],
      ['vf', 'set', pf, '0', '--max-tx-rate', '-5'],
      ['vf', 'set', pf, '0', '--max-tx-rate', '5000'],
      ['vf', 'set', pf, '0', '--min-tx-rate', '200', '--max-tx-rate', '100'],
      ['vf', 'set', pf, '0', '--spoofchk', 'maybe'],
      ['vf', 'set', pf, '9', '--vlan', '10'],
      ['vf', 'set', pf, 'x', '--vlan', '10'],
      ['pf', 'set', pf, '--num-vfs', '8'],
      ['pf', 'set', pf, '--mtu', '20'],
      ['pf', 'set', `../${pf}`, '--num-vfs', '1'],
      ['pf', 'set', `${pf}/../lo`, '--num-vfs', '1'],
      ['pf', 'set', 'lo', '--num-vfs', '1'],
      ['pf', 'set', '0000:00:00.0', '--num-vfs', '1'],
      ['pf', 'set', '0000:00:00.0/../..', '--num-vfs', '1'],
      ['vf', 'bind', pf, '0', '--driver', '../../evil'],
      ['vf', 'bind', pf, '0', '--driver', 'vfio-pci; reboot'],
    ];
    const before = snapshot(pf);
    for (const args of bad) {
      const r = await sriovctl(args);
      assert.equal(r.code, 2, `${args.join(' ')} → ${r.code}: ${r.stderr}`);
      assert.ok(r.stderr.length > 0, `${args.join(' ')} says why`);
    }
    assert.equal(snapshot(pf), before);
  });

  it('binds vfio-pci and back', async () => {
    await ok(['vf', 'bind', pf, '2', '--driver', 'vfio-pci']);
    const vfPci = execFileSync('readlink', ['-f', `/sys/class/net/${pf}/device/virtfn2`], { encoding: 'utf8' }).trim();
    assert.match(execFileSync('readlink', [`${vfPci}/driver`], { encoding: 'utf8' }), /vfio-pci/);
    await ok(['vf', 'bind', pf, '2', '--driver', 'kernel']);
    assert.match(execFileSync('readlink', [`${vfPci}/driver`], { encoding: 'utf8' }), /igbvf/);
  });

  it('host apply converges and a second run changes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfleet-lab-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(
      file,
      `policies:\n  - name: lab\n    selector: { pfNames: [${pf}], drivers: [igb] }\n    numVfs: 4\n    mtu: 9000\n` +
        `    vfs:\n      "0-1": { trust: on, spoofChk: off }\n      "2": { vlan: 200, maxTxRateMbps: 300 }\n      "3": { mac: "02:5f:00:00:02:03" }\n`,
    );
    const first = await ok(['host', 'apply', '-f', file]);
    assert.match(first, /numVfs: 5 → 4/);
    const raw = ipLink(pf);
    assert.equal(raw.mtu, 9000);
    assert.equal(raw.vfinfo_list!.length, 4);
    assert.equal(raw.vfinfo_list![0]!.trust, true);
    assert.equal(raw.vfinfo_list![1]!.spoofchk, false);
    assert.equal(raw.vfinfo_list![2]!.vlan_list?.[0]?.vlan, 200);
    assert.equal(raw.vfinfo_list![2]!.rate?.max_tx, 300);
    assert.equal(raw.vfinfo_list![3]!.address, '02:5f:00:00:02:03');
    const before = snapshot(pf);
    const second = await ok(['host', 'apply', '-f', file]);
    assert.equal(second.trim(), 'no changes');
    assert.equal(snapshot(pf), before);
    const dry = await ok(['host', 'apply', '-f', file, '--dry-run', '-o', 'json']);
    assert.deepEqual(JSON.parse(dry).changes, []);
  });
});
