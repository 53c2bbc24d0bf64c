// `--pfs`: an agent that sees and writes only some of a host's PFs (src/host/restricted.ts), and the boot id that tells two
// agents they share a kernel (HostInventory.bootId, on the sim and on linux).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { SriovError } from '../../src/host/errors.js';
import { readBootId } from '../../src/host/linux/boot-id.js';
import { hostWithPfs, parsePfList, RestrictedHost } from '../../src/host/restricted.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost, updateSimState } from '../../src/sim/state.js';

let dir: string;
let seq = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-restricted-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** A simulated E810 with 3 PFs (ens1f0, ens1f1, ens2f0), 2 VFs on each. */
async function threePfs() {
  const file = join(dir, `host-${seq++}.json`);
  await initSimHost(file, { profile: 'ice', pfs: 3, hostname: 'sim-a' });
  const full = new SriovHost(createSimPorts(file));
  const names = (await full.inventory()).pfs.map((pf) => pf.name);
  for (const name of names) await full.setNumVfs(name, 2, { deviceType: 'netdevice' });
  return { file, full, names };
}

function isForbidden(pattern: RegExp) {
  return (e: unknown) => e instanceof SriovError && e.code === 'FORBIDDEN' && e.exitCode === 2 && pattern.test(e.message);
}

describe('a host restricted with --pfs', () => {
  it('lists only the PFs given', async () => {
    const { file, names } = await threePfs();
    const host = await hostWithPfs(createSimPorts(file), `${names[0]},${names[2]}`);
    assert.ok(host instanceof RestrictedHost);
    assert.deepEqual((await host.inventory()).pfs.map((pf) => pf.name), [names[0], names[2]]);
    assert.equal((await host.pf(names[0]!)).name, names[0]);
  });

  it('refuses every write to another PF or its VFs, naming the option, and changes nothing', async () => {
    const { file, full, names } = await threePfs();
    const host = await hostWithPfs(createSimPorts(file), names[0]!);
    const other = await full.pf(names[1]!);
    const before = await readFile(file, 'utf8');
    const writes: Array<[string, () => Promise<unknown>]> = [
      ['numVfs', () => host.setNumVfs(names[1]!, 4)],
      ['numVfs by PCI address', () => host.setNumVfs(other.pciAddress, 0)],
      ['autoprobe', () => host.setAutoprobe(names[1]!, false)],
      ['mtu', () => host.setMtu(names[1]!, 9000)],
      ['VF settings', () => host.setVfSettings(names[1]!, [{ vf: 0, settings: { vlan: 7 } }])],
      ['bind', () => host.bindVf(names[1]!, 0, 'vfio-pci')],
      // The agent's own paths take a PF it read itself: a PF from elsewhere is refused at the port.
      ['VF settings on a PfInfo', () => host.applyVfSettings(other, [{ vf: 0, settings: { vlan: 7 } }])],
      ['bind on a PfInfo', () => host.bindVfOn(other, 1, 'vfio-pci')],
    ];
    for (const [what, write] of writes) await assert.rejects(write(), isForbidden(/--pfs/), what);
    assert.equal(await readFile(file, 'utf8'), before, 'the host is as it was');
  });

  it('still writes its own PFs and their VFs', async () => {
    const { file, full, names } = await threePfs();
    const host = await hostWithPfs(createSimPorts(file), names[1]!);
    await host.setVfSettings(names[1]!, [{ vf: 0, settings: { vlan: 7 } }]);
    assert.equal(await host.bindVf(names[1]!, 1, 'vfio-pci'), true);
    await host.setNumVfs(names[1]!, 4);
    const pf = await full.pf(names[1]!);
    assert.deepEqual([pf.numVfs, pf.vfs[0]!.vlan], [4, 0], 'the new count made new VFs');
    assert.equal((await full.pf(names[0]!)).numVfs, 2, 'the other PF is untouched');
  });

  it('refuses a bad --pfs before anything starts: not an interface name, a name twice, a PF this host lacks', async () => {
    const { file, names } = await threePfs();
    const ports = createSimPorts(file);
    const invalid = (pattern: RegExp) => (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT' && pattern.test(e.message);
    assert.throws(() => parsePfList('ens1f0,'), invalid(/--pfs: "" is not an interface name/));
    assert.throws(() => parsePfList('ens1f0,../x'), invalid(/--pfs/));
    assert.throws(() => parsePfList(`${names[0]},${names[0]}`), invalid(/twice/));
    await assert.rejects(hostWithPfs(ports, `${names[0]},ens9f9`), invalid(/--pfs: .*ens9f9/));
    assert.deepEqual(parsePfList(' ens1f0 , ens1f1'), ['ens1f0', 'ens1f1']);
    assert.ok(!((await hostWithPfs(ports, undefined)) instanceof RestrictedHost), 'without --pfs, the whole host');
  });
});

describe('boot id', () => {
  it('two agents on one simulated host (one state file) report the same one, whatever their --pfs; another host another', async () => {
    const a = await threePfs();
    const b = await threePfs();
    const idA0 = (await (await hostWithPfs(createSimPorts(a.file), a.names[0]!)).inventory()).bootId;
    const idA1 = (await (await hostWithPfs(createSimPorts(a.file), a.names[1]!)).inventory()).bootId;
    const idB = (await b.full.inventory()).bootId;
    assert.match(idA0 ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(idA0, idA1);
    assert.notEqual(idA0, idB);
  });

  it('a state file written before boot ids gets one on first read, and keeps it', async () => {
    const { file } = await threePfs();
    await updateSimState(file, (s) => {
      delete s.bootId;
    });
    const first = (await new SriovHost(createSimPorts(file)).inventory()).bootId;
    assert.ok(first);
    assert.equal(JSON.parse(await readFile(file, 'utf8')).bootId, first, 'kept in the file');
    assert.equal((await new SriovHost(createSimPorts(file)).inventory()).bootId, first);
  });

  it('a state file whose boot id is no UUID is refused', async () => {
    const { file } = await threePfs();
    const state = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...state, bootId: '../etc' }));
    await assert.rejects(new SriovHost(createSimPorts(file)).inventory(), (e: unknown) => e instanceof SriovError && /bootId is not a UUID/.test(e.message));
  });

  it('linux: read from /proc/sys/kernel/random/boot_id, null when missing or not a UUID', async () => {
    const path = join(dir, 'boot_id');
    await writeFile(path, '5E2C0B4C-3E3F-4D8B-9A43-7D0E6F1A2B3C\n');
    assert.equal(await readBootId(path), '5e2c0b4c-3e3f-4d8b-9a43-7d0e6f1a2b3c');
    await writeFile(path, 'not a uuid\n');
    assert.equal(await readBootId(path), null);
    assert.equal(await readBootId(join(dir, 'missing')), null);
  });
});
