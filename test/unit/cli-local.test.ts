// sriovctl in local mode, run as a user would, against simulated hosts.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HostInventory } from '../../src/host/model.js';
import { errorLine, table } from '../../src/cli/output.js';
import { simProfile, simProfileNames } from '../../src/sim/profiles.js';
import { sriovctl, type CliResult } from '../helpers/cli.js';

let dir: string;
let seq = 0;
/** No controller anywhere: local mode, whatever the environment running the tests holds. */
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-cli-local-'));
  env = { HOME: dir, SRIOV_SERVER: '', SRIOV_TOKEN: '', SRIOV_CONFIG: '' };
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cli(file: string, args: string[]): Promise<CliResult> {
  return sriovctl(['--host', `sim:${file}`, ...args], env);
}

async function ok(file: string, args: string[]): Promise<string> {
  const r = await cli(file, args);
  assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function newHost(profile = 'igb', pfs = 2): Promise<string> {
  const file = join(dir, `host-${seq++}.json`);
  const r = await sriovctl(['sim', 'init', file, '--profile', profile, '--pfs', String(pfs)], env);
  assert.equal(r.code, 0, r.stderr);
  return file;
}

async function inventory(file: string): Promise<HostInventory> {
  return JSON.parse(await ok(file, ['host', 'inventory', '-o', 'json'])) as HostInventory;
}

/** Runs `args`, expects exit 2, and checks the state file did not change by a byte. */
async function refusedUnchanged(file: string, args: string[], stderr?: RegExp): Promise<void> {
  const before = await readFile(file);
  const r = await cli(file, args);
  assert.equal(r.code, 2, `sriovctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  if (stderr) assert.match(r.stderr, stderr);
  assert.ok(before.equals(await readFile(file)), `sriovctl ${args.join(' ')} changed the sim state`);
}

const PF_FIELDS = ['hostname', 'name', 'pciAddress', 'vendorId', 'deviceId', 'driver', 'totalVfs', 'numVfs', 'numaNode', 'linkSpeedMbps', 'mtu', 'mac', 'vfs'];
const VF_FIELDS = ['index', 'pciAddress', 'driver', 'netdev', 'iommuGroup', 'mac', 'vlan', 'qos', 'vlanProto', 'minTxRateMbps', 'maxTxRateMbps', 'spoofChk', 'trust', 'linkState'];

describe('sriovctl local mode: inventory and settings', () => {
  it('host inventory -o json has the contract fields', async () => {
    const file = await newHost();
    const pf0 = (await inventory(file)).pfs[0]!.name;
    await ok(file, ['pf', 'set', pf0, '--num-vfs', '2']);
    const inv = await inventory(file);
    assert.equal(typeof inv.hostname, 'string');
    assert.equal(inv.pfs.length, 2);
    for (const pf of inv.pfs) {
      for (const f of PF_FIELDS.slice(1)) assert.ok(Object.hasOwn(pf, f), `PF field ${f}`);
      assert.match(pf.pciAddress, /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
      assert.equal(pf.driver, 'igb');
      assert.equal(pf.totalVfs, 7);
      assert.equal(pf.linkSpeedMbps, 1000);
    }
    const vfs = inv.pfs[0]!.vfs;
    assert.equal(vfs.length, 2);
    for (const vf of vfs) for (const f of VF_FIELDS) assert.ok(Object.hasOwn(vf, f), `VF field ${f}`);
    assert.deepEqual(
      vfs.map((v) => v.index),
      [0, 1],
    );
    const table = await ok(file, ['host', 'inventory']);
    assert.match(table, new RegExp(`^${pf0}\\s+${inv.pfs[0]!.pciAddress}\\s+igb`, 'm'));
  });

  it('pf set --num-vfs 3, then 5; repeating a setting changes nothing', async () => {
    const file = await newHost();
    const pf0 = (await inventory(file)).pfs[0]!.name;
    await ok(file, ['pf', 'set', pf0, '--num-vfs', '3']);
    assert.equal((await inventory(file)).pfs[0]!.numVfs, 3);
    await ok(file, ['pf', 'set', pf0, '--num-vfs', '5']);
    const pf = (await inventory(file)).pfs[0]!;
    assert.equal(pf.numVfs, 5);
    assert.equal(pf.vfs.length, 5);
    const before = await readFile(file);
    assert.match(await ok(file, ['pf', 'set', pf0, '--num-vfs', '5']), /no changes/);
    assert.ok(before.equals(await readFile(file)));
    assert.deepEqual(JSON.parse(await ok(file, ['pf', 'set', pf0, '--num-vfs', '5', '-o', 'json'])), { changed: false, changes: 0 });
  });

  it('vf set round trip: what is set is what the inventory shows', async () => {
    const file = await newHost();
    const pf0 = (await inventory(file)).pfs[0]!.name;
    await ok(file, ['pf', 'set', pf0, '--num-vfs', '3']);
    const args = ['vf', 'set', pf0, '1', '--mac', '02:5f:00:00:01:01', '--vlan', '100', '--qos', '3', '--max-tx-rate', '200', '--spoofchk', 'off', '--trust', 'on'];
    await ok(file, args);
    const vf = (await inventory(file)).pfs[0]!.vfs[1]!;
    assert.deepEqual(
      { mac: vf.mac, vlan: vf.vlan, qos: vf.qos, maxTxRateMbps: vf.maxTxRateMbps, spoofChk: vf.spoofChk, trust: vf.trust },
      { mac: '02:5f:00:00:01:01', vlan: 100, qos: 3, maxTxRateMbps: 200, spoofChk: false, trust: true },
    );
    // The others are untouched.
    assert.equal((await inventory(file)).pfs[0]!.vfs[0]!.vlan, 0);
    // Back to scrubbed values (igb then reports a random MAC of its own, not the zero address).
    await ok(file, ['vf', 'set', pf0, '1', '--mac', '00:00:00:00:00:00', '--vlan', '0', '--max-tx-rate', '0', '--spoofchk', 'on', '--trust', 'off']);
    const reset = (await inventory(file)).pfs[0]!.vfs[1]!;
    assert.notEqual(reset.mac, '02:5f:00:00:01:01');
    assert.deepEqual([reset.vlan, reset.maxTxRateMbps, reset.spoofChk, reset.trust], [0, 0, true, false]);
  });

  it('link-state on igb is refused as UNSUPPORTED with exit 2, nothing changed', async () => {
    const file = await newHost();
    const pf0 = (await inventory(file)).pfs[0]!.name;
    await ok(file, ['pf', 'set', pf0, '--num-vfs', '2']);
    await refusedUnchanged(file, ['vf', 'set', pf0, '0', '--link-state', 'enable'], /UNSUPPORTED/);
  });
});

describe('sriovctl local mode: bad input exits 2 and changes nothing', () => {
  let igb: string;
  let ice: string;
  let pf0: string;
  let vfPci: string;

  before(async () => {
    [igb, ice] = await Promise.all([newHost('igb'), newHost('ice', 1)]);
    pf0 = (await inventory(igb)).pfs[0]!.name;
    await ok(igb, ['pf', 'set', pf0, '--num-vfs', '3']);
    await ok(ice, ['pf', 'set', pf0, '--num-vfs', '3']);
    vfPci = (await inventory(igb)).pfs[0]!.vfs[0]!.pciAddress;
  });

  // [what, args, expected stderr]; PF names are filled in once the host exists.
  const cases: Array<[string, (pf: string, vfPci: string) => string[], RegExp]> = [
    ['malformed MAC', (pf) => ['vf', 'set', pf, '0', '--mac', '02:5f:00:00:01'], /not a MAC address/],
    ['multicast MAC', (pf) => ['vf', 'set', pf, '0', '--mac', '01:00:5e:00:00:01'], /multicast/],
    ['VLAN 4095', (pf) => ['vf', 'set', pf, '0', '--vlan', '4095'], /VLAN/],
    ['VLAN -1', (pf) => ['vf', 'set', pf, '0', '--vlan', '-1'], /VLAN/],
    ['QoS 8', (pf) => ['vf', 'set', pf, '0', '--vlan', '10', '--qos', '8'], /QoS/],
    ['QoS without VLAN', (pf) => ['vf', 'set', pf, '0', '--qos', '3'], /need --vlan/],
    ['negative rate', (pf) => ['vf', 'set', pf, '0', '--max-tx-rate', '-5'], /max tx rate/],
    ['rate above link speed', (pf) => ['vf', 'set', pf, '0', '--max-tx-rate', '5000'], /link speed/],
    ['VF index out of range', (pf) => ['vf', 'set', pf, '3', '--vlan', '5'], /VF index/],
    ['VF index not a number', (pf) => ['vf', 'set', pf, 'x', '--vlan', '5'], /VF index/],
    ['no setting at all', (pf) => ['vf', 'set', pf, '0'], /at least one/],
    ['num-vfs above totalVfs', (pf) => ['pf', 'set', pf, '--num-vfs', '8'], /between 0 and 7/],
    ['PF name ../x', () => ['pf', 'set', '../x', '--num-vfs', '1'], /interface name/],
    ['PF name ens1f0/../..', () => ['pf', 'set', 'ens1f0/../..', '--num-vfs', '1'], /interface name/],
    ['PF name lo', () => ['pf', 'set', 'lo', '--num-vfs', '1'], /lo/],
    ['PCI address of a VF', (_, vf) => ['pf', 'set', vf, '--num-vfs', '1'], /NOT_SRIOV_PF/],
    ['driver name with a path', (pf) => ['vf', 'bind', pf, '0', '--driver', '../evil'], /driver "[^"]*" cannot drive a VF of .*choose one of kernel, vfio-pci, igbvf/],
    ['driver name with a space', (pf) => ['vf', 'bind', pf, '0', '--driver', 'vfio pci'], /driver "[^"]*" cannot drive a VF of .*choose one of kernel, vfio-pci, igbvf/],
    ['driver name with a shell character', (pf) => ['vf', 'bind', pf, '0', '--driver', 'igbvf;reboot'], /driver "[^"]*" cannot drive a VF of .*choose one of kernel, vfio-pci, igbvf/],
    ['unknown option', (pf) => ['vf', 'set', pf, '0', '--colour', 'red'], /unknown option/],
  ];
  for (const [what, args, stderr] of cases) {
    it(what, async () => refusedUnchanged(igb, args(pf0, vfPci), stderr));
  }

  it('min tx rate above max tx rate (ice, which supports both)', async () => {
    await refusedUnchanged(ice, ['vf', 'set', pf0, '0', '--min-tx-rate', '500', '--max-tx-rate', '100'], /min tx rate/);
  });
});

describe('sriovctl local mode: host apply', () => {
  const policy = (pf: string, extra = '') => `policies:
  - name: fabric-a
    selector:
      pfNames: [${pf}]
    numVfs: 4
    physnet: fabric
    vfs:
      "0-1":
        vlan: 100
        spoofChk: on
${extra}`;

  async function policyFile(text: string): Promise<string> {
    const file = join(dir, `policy-${seq++}.yaml`);
    await writeFile(file, text);
    return file;
  }

  it('prints a diff and applies it; a second run prints "no changes" and writes nothing', async () => {
    const file = await newHost();
    const pf0 = (await inventory(file)).pfs[0]!.name;
    const yaml = await policyFile(policy(pf0));
    const first = await ok(file, ['host', 'apply', '-f', yaml]);
    assert.match(first, new RegExp(`${pf0} .*← policy fabric-a`));
    assert.match(first, /numVfs: 0 → 4/);
    assert.match(first, /vf 0 vlan/);
    const pf = (await inventory(file)).pfs[0]!;
    assert.equal(pf.numVfs, 4);
    assert.deepEqual(
      pf.vfs.map((v) => v.vlan),
      [100, 100, 0, 0],
    );
    const before = await readFile(file);
    assert.equal(await ok(file, ['host', 'apply', '-f', yaml]), 'no changes\n');
    assert.ok(before.equals(await readFile(file)), 'a second apply rewrote the state');
  });

  it('a policy that matches no PF says so by name and selector, exits 2 and changes nothing', async () => {
    const file = await newHost();
    const pf0 = (await inventory(file)).pfs[0]!.name;
    const yaml = await policyFile(`${policy(pf0)}  - name: fabric-b
    selector: { pfNames: [ens9f0], drivers: [igb] }
    numVfs: 1
`);
    await refusedUnchanged(file, ['host', 'apply', '-f', yaml], /^sriovctl: NOT_FOUND: policy fabric-b matched no PF \(selector: pfNames=ens9f0 drivers=igb\); host simhost has ens1f0, ens1f1\n$/);
  });

  it('numVfs: 0 plans and applies the removal of every VF; then "no changes"', async () => {
    const file = await newHost();
    const pf0 = (await inventory(file)).pfs[0]!.name;
    await ok(file, ['pf', 'set', pf0, '--num-vfs', '3']);
    const yaml = await policyFile(`policies:\n  - name: drain\n    selector: { pfNames: [${pf0}] }\n    numVfs: 0\n`);
    const out = await ok(file, ['host', 'apply', '-f', yaml]);
    assert.match(out, /numVfs: 3 → 0/);
    assert.match(out, /applied 1 changes/);
    assert.equal((await inventory(file)).pfs[0]!.numVfs, 0);
    assert.equal(await ok(file, ['host', 'apply', '-f', yaml]), 'no changes\n');
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    const file = await newHost();
    const pf0 = (await inventory(file)).pfs[0]!.name;
    const yaml = await policyFile(policy(pf0));
    const before = await readFile(file);
    assert.match(await ok(file, ['host', 'apply', '-f', yaml, '--dry-run']), /numVfs: 0 → 4/);
    const json = JSON.parse(await ok(file, ['host', 'apply', '-f', yaml, '--dry-run', '-o', 'json'])) as { changes: string[]; applied: boolean };
    assert.equal(json.applied, false);
    assert.ok(json.changes.some((c) => /numVfs: 0 → 4/.test(c)));
    assert.ok(before.equals(await readFile(file)));
  });

  const invalid: Array<[string, (pf: string) => string, RegExp]> = [
    ['an unknown field', (pf) => policy(pf).replace('numVfs: 4', 'numVfs: 4\n    colour: red'), /colour|nrecognized/],
    ['a bad VLAN', (pf) => policy(pf).replace('vlan: 100', 'vlan: 4095'), /VLAN/],
    ['two policies selecting one PF', (pf) => policy(pf, '  - name: fabric-b\n    selector:\n      drivers: [igb]\n    numVfs: 2\n'), /more than one policy/],
    ['numVfs above totalVfs', (pf) => policy(pf).replace('numVfs: 4', 'numVfs: 8'), /numVfs 8 is above .*sriov_totalvfs of 7/],
    ['YAML that does not parse', () => 'policies: [', /YAML/],
  ];
  for (const [what, text, stderr] of invalid) {
    it(`refuses a policy file with ${what}: exit 2, nothing changed`, async () => {
      const file = await newHost();
      const pf0 = (await inventory(file)).pfs[0]!.name;
      await refusedUnchanged(file, ['host', 'apply', '-f', await policyFile(text(pf0))], stderr);
    });
  }

  it('refuses a policy file that does not exist', async () => {
    const file = await newHost();
    await refusedUnchanged(file, ['host', 'apply', '-f', join(dir, 'nope.yaml')], /cannot read policy file/);
  });
});

describe('sriovctl: command line', () => {
  it('--help exits 0 and lists the command groups', async () => {
    const r = await sriovctl(['--help'], env);
    assert.equal(r.code, 0);
    for (const group of ['host', 'pf', 'vf', 'tenant', 'network', 'physnet', 'alloc', 'audit', 'events', 'token', 'sim']) {
      assert.match(r.stdout, new RegExp(`^  ${group}\\b`, 'm'), group);
    }
  });

  it('an error is printed as one line of bounded length', () => {
    assert.equal(errorLine('INVALID_ARGUMENT: a\nb\r\n\tc\u001b[31m'), 'INVALID_ARGUMENT: a b c [31m');
    const long = errorLine(`HOST_ERROR: ${'x'.repeat(1_000_000)}`);
    assert.ok(long.length <= 401 && long.endsWith('…'), `${long.length} characters`);
  });

  it('a table cell is one line: a reported newline or escape cannot forge a row', () => {
    const out = table(['OBJECT', 'REASON'], [['host/h1/x\n2026-12-01  admin  token.create', 'bad\r\n\u001b[2Kgone']]);
    assert.equal(out.split('\n').length, 3, out);
    assert.ok(!out.includes('\u001b') && !out.includes('\r'), out);
    assert.ok(out.includes('host/h1/x 2026-12-01  admin  token.create  bad [2Kgone'), out);
  });

  it('sim init --help lists every profile of the profile table', async () => {
    const r = await sriovctl(['sim', 'init', '--help'], env);
    assert.equal(r.code, 0);
    for (const name of simProfileNames()) assert.match(r.stdout, new RegExp(`\\b${name} \\(${simProfile(name).model}\\)`), name);
  });

  it('sim init refuses an existing file unless --force, and a host name that is not one', async () => {
    const file = await newHost();
    const before = await readFile(file);
    const again = await sriovctl(['sim', 'init', file, '--profile', 'ice'], env);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists; sim init does not overwrite a simulated host \(add --force to replace it\)/);
    assert.ok(before.equals(await readFile(file)));
    const bad = await sriovctl(['sim', 'init', join(dir, `new-${seq++}.json`), '--profile', 'ice', '--hostname', 'Bad_Host'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /host name must be a lower-case DNS name/);
    assert.equal((await sriovctl(['sim', 'init', file, '--profile', 'ice', '--force'], env)).code, 0);
    assert.equal((await inventory(file)).pfs[0]!.driver, 'ice');
  });

  it('sim cable pulls and plugs a PF: its link reads down, then up; a bad state or PF is refused and changes nothing', async () => {
    const file = await newHost('ice', 1);
    const link = async () => (await inventory(file)).pfs[0]!.linkState;
    assert.equal((await sriovctl(['sim', 'cable', file, 'ens1f0', 'down'], env)).code, 0);
    assert.equal(await link(), 'down');
    const before = await readFile(file);
    const bad = await sriovctl(['sim', 'cable', file, 'ens1f0', 'sideways'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /cable state must be up or down, got "sideways"/);
    const unknown = await sriovctl(['sim', 'cable', file, 'ens9f9', 'up'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no PF "ens9f9" on the simulated host \(its PFs: ens1f0\)/);
    assert.ok(before.equals(await readFile(file)));
    assert.equal((await sriovctl(['sim', 'cable', file, 'ens1f0', 'up'], env)).code, 0);
    assert.equal(await link(), 'up');
  });

  it('an unknown command exits 2', async () => {
    const r = await sriovctl(['frobnicate'], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command/);
  });

  it('controller commands without a server exit 2 and say what is missing', async () => {
    for (const args of [['tenant', 'list'], ['alloc', 'create', '--network', 'n', '--workload', 'w'], ['audit', 'isolation']]) {
      const r = await sriovctl(args, env);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, new RegExp(`${args.slice(0, 2).join(' ')} needs --server`));
    }
  });

  it('local-only commands refuse --server', async () => {
    const file = await newHost();
    await refusedUnchanged(file, ['pf', 'set', 'ens1f0', '--num-vfs', '1', '--server', 'http://127.0.0.1:1'], /does not take --server/);
  });
});
