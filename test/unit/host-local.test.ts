// The host layer's refusals on a simulated host: VF drivers, restore after a failed bind,
// duplicate MACs, policy limits checked against an inventory, numVfs 0, and the backend's name.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chooseBackend } from '../../src/backends/choose.js';
import { SriovHost } from '../../src/host/configurator.js';
import { SriovError } from '../../src/host/errors.js';
import { parseIfName, parseInteger, parseMac, parsePciAddress, shown } from '../../src/host/validate.js';
import { KernelError, type HostPorts } from '../../src/host/ports.js';
import { applyPlan } from '../../src/policy/apply.js';
import { describeSelector, planPolicies, unmatchedPolicies } from '../../src/policy/plan.js';
import { parsePolicyDocument } from '../../src/policy/schema.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost, loadSimState } from '../../src/sim/state.js';

let dir: string;
let seq = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-host-local-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function simFile(profile = 'ice', pfs = 1): Promise<string> {
  const file = join(dir, `host-${seq++}.json`);
  await initSimHost(file, { profile, pfs });
  return file;
}

async function refused(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof SriovError, `expected SriovError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    assert.equal(e.exitCode, 2);
    return true;
  });
}

const policy = (body: string) => parsePolicyDocument(`policies:\n  - name: fabric-a\n    selector: { pfNames: [ens1f0] }\n${body}`, 'p.yaml');

describe('host layer: VF drivers', () => {
  it('binds only the PF family VF driver, vfio-pci or kernel; a PF driver is refused and nothing changes', async () => {
    const file = await simFile('ice');
    const host = new SriovHost(createSimPorts(file));
    await host.setNumVfs('ens1f0', 2);
    const before = await readFile(file);
    for (const driver of ['ice', 'igbvf', 'mlx5_core', '../evil']) {
      await refused(host.bindVf('ens1f0', 0, driver), 'INVALID_ARGUMENT', /cannot drive a VF of ens1f0 .*choose one of kernel, vfio-pci, iavf/);
    }
    assert.ok(before.equals(await readFile(file)), 'a refused bind changed the host');
    assert.equal(await host.bindVf('ens1f0', 0, 'vfio-pci'), true);
    assert.equal((await host.pf('ens1f0')).vfs[0]!.driver, 'vfio-pci');
    assert.equal(await host.bindVf('ens1f0', 0, 'iavf'), true);
    assert.equal((await host.pf('ens1f0')).vfs[0]!.driver, 'iavf');
  });

  it('says a PF without VFs has none to bind', async () => {
    const host = new SriovHost(createSimPorts(await simFile('igb')));
    await refused(host.bindVf('ens1f0', 0, 'kernel'), 'INVALID_ARGUMENT', /ens1f0 has no VFs/);
  });

  it('puts the previous driver back when a bind fails, and says so', async () => {
    const file = await simFile('ice');
    const sim = createSimPorts(file);
    // vfio-pci "fails in probe": the VF is already unbound from iavf when the error comes.
    const ports: HostPorts = {
      ...sim,
      drivers: {
        ...sim.drivers,
        bind: async (address, driver) => {
          if (driver !== 'vfio-pci') return sim.drivers.bind(address, driver);
          await sim.drivers.unbind(address);
          throw new KernelError('ENODEV', `bind ${address}`, `bind ${address}: probe failed`);
        },
      },
    };
    const host = new SriovHost(ports);
    await host.setNumVfs('ens1f0', 2);
    assert.equal((await host.pf('ens1f0')).vfs[1]!.driver, 'iavf');
    await assert.rejects(host.bindVf('ens1f0', 1, 'vfio-pci'), (e) => {
      assert.ok(e instanceof SriovError);
      assert.match(e.message, /probe failed; vf 1 restored to iavf$/);
      return true;
    });
    const vf = (await host.pf('ens1f0')).vfs[1]!;
    assert.equal(vf.driver, 'iavf');
    assert.ok(vf.netdev, 'the restored VF has its netdev back');
  });
});

describe('host layer: duplicate MACs', () => {
  it('refuses a MAC another VF of the PF has, and accepts it once that VF lets it go', async () => {
    const file = await simFile('ice');
    const host = new SriovHost(createSimPorts(file));
    await host.setNumVfs('ens1f0', 3);
    const mac = '02:00:00:00:00:01';
    await host.setVfSettings('ens1f0', [{ vf: 0, settings: { mac } }]);
    const before = await readFile(file);
    await refused(host.setVfSettings('ens1f0', [{ vf: 1, settings: { mac } }]), 'CONFLICT', /MAC 02:00:00:00:00:01 for ens1f0 vf 1 is already on vf 0/);
    await refused(
      host.setVfSettings('ens1f0', [
        { vf: 1, settings: { mac: '02:00:00:00:00:09' } },
        { vf: 2, settings: { mac: '02:00:00:00:00:09' } },
      ]),
      'CONFLICT',
      /02:00:00:00:00:09/,
    );
    assert.ok(before.equals(await readFile(file)), 'a refused MAC changed the host');
    // The same VF again is no conflict; a MAC moved in one request is none either.
    assert.equal((await host.setVfSettings('ens1f0', [{ vf: 0, settings: { mac } }])).length, 0);
    await host.setVfSettings('ens1f0', [
      { vf: 0, settings: { mac: '00:00:00:00:00:00' } },
      { vf: 1, settings: { mac } },
    ]);
    assert.equal((await host.pf('ens1f0')).vfs[1]!.mac, mac);
  });

  it('refuses a policy MAC that a VF the policy leaves alone still has', async () => {
    const file = await simFile('ice');
    const host = new SriovHost(createSimPorts(file));
    await host.setNumVfs('ens1f0', 4);
    await host.setVfSettings('ens1f0', [{ vf: 3, settings: { mac: '02:00:00:00:00:07' } }]);
    const policies = policy('    numVfs: 4\n    vfs:\n      "0": { mac: "02:00:00:00:00:07" }\n');
    const inv = await host.inventory();
    assert.throws(() => planPolicies(inv, policies), /MAC 02:00:00:00:00:07 for ens1f0 vf 0 is already on vf 3/);
  });
});

describe('host layer: policies against an inventory', () => {
  it('planPolicies names sriov_totalvfs when numVfs is above it', async () => {
    const inv = await new SriovHost(createSimPorts(await simFile('igb'))).inventory();
    assert.throws(
      () => planPolicies(inv, policy('    numVfs: 8\n')),
      (e) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT' && /numVfs 8 is above ens1f0's sriov_totalvfs of 7/.test(e.message),
    );
    assert.doesNotThrow(() => planPolicies(inv, policy('    numVfs: 7\n')));
  });

  it('planPolicies refuses a rate above the link speed and a field the driver cannot set', async () => {
    const inv = await new SriovHost(createSimPorts(await simFile('igb'))).inventory();
    assert.throws(() => planPolicies(inv, policy('    numVfs: 2\n    vfs:\n      "0": { maxTxRateMbps: 5000 }\n')), /above the link speed of 1000 Mbps/);
    assert.throws(() => planPolicies(inv, policy('    numVfs: 2\n    vfs:\n      "0": { minTxRateMbps: 100 }\n')), /igb does not support minTxRateMbps/);
  });

  it('numVfs 0 plans and applies the removal of every VF', async () => {
    const file = await simFile('ice');
    const host = new SriovHost(createSimPorts(file));
    await host.setNumVfs('ens1f0', 4);
    const policies = policy('    numVfs: 0\n');
    const plans = planPolicies(await host.inventory(), policies);
    assert.deepEqual(plans[0]!.numVfs, { from: 4, to: 0 });
    await applyPlan(host, plans);
    assert.equal((await host.pf('ens1f0')).numVfs, 0);
    assert.equal((await loadSimState(file)).pfs[0]!.vfs.length, 0);
  });

  it('numVfs 0 with per-VF settings is refused where it is written', () => {
    assert.throws(() => policy('    numVfs: 0\n    vfs:\n      "0": { vlan: 10 }\n'), /p\.yaml:6: policies\[0\]\.vfs: policy fabric-a: numVfs 0 removes every VF/);
  });

  it('lists the policies that match no PF, with their selectors', async () => {
    const inv = await new SriovHost(createSimPorts(await simFile('ice', 2))).inventory();
    const policies = parsePolicyDocument(
      'policies:\n  - { name: a, selector: { pfNames: [ens1f0] }, numVfs: 1 }\n  - { name: b, selector: { pfNames: [ens9f0], drivers: [ice] }, numVfs: 1 }\n',
      'p.yaml',
    );
    const unmatched = unmatchedPolicies(inv, policies);
    assert.deepEqual(unmatched.map((p) => p.name), ['b']);
    assert.equal(describeSelector(unmatched[0]!.selector), 'pfNames=ens9f0 drivers=ice');
  });
});

describe('host backend: the name a host registers under', () => {
  // An empty sysfs: no SR-IOV hardware, so the daemon falls back to the simulator.
  const noHardware = () => ({ sysfsRoot: join(dir, 'no-sysfs'), host: 'auto' });

  it('the fallback simulator takes --hostname', async () => {
    const dataDir = join(dir, `data-${seq++}`);
    const choice = await chooseBackend({ ...noHardware(), dataDir, hostname: 'edge-7' });
    assert.equal(choice.ports.hostname(), 'edge-7');
    assert.equal((await loadSimState(join(dataDir, 'sim-host.json'))).hostname, 'edge-7');
  });

  it("the fallback simulator takes the machine's name without --hostname, never sim-host", async () => {
    const choice = await chooseBackend({ ...noHardware(), dataDir: join(dir, `data-${seq++}`) });
    assert.equal(choice.ports.hostname(), hostname().toLowerCase());
    assert.notEqual(choice.ports.hostname(), 'sim-host');
  });

  it('an explicit sim file keeps its own name unless --hostname is given', async () => {
    const file = join(dir, `named-${seq++}.json`);
    await initSimHost(file, { profile: 'igb', pfs: 1, hostname: 'rack1-node3' });
    const dataDir = join(dir, `data-${seq++}`);
    assert.equal((await chooseBackend({ host: `sim:${file}`, dataDir })).ports.hostname(), 'rack1-node3');
    assert.equal((await chooseBackend({ host: `sim:${file}`, dataDir, hostname: 'other' })).ports.hostname(), 'other');
  });
});

describe('host layer: numbers are decimal only', () => {
  it('refuses octal-looking, hex, exponent, signed and padded numbers, saying decimal only', () => {
    for (const text of ['010', '0x10', '1e3', ' 5', '5 ', '+5', '1.0', '', '٣', '5_000', '-0']) {
      assert.throws(
        () => parseInteger(text, 'VLAN', 0, 4094),
        (e) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT' && /^VLAN must be a whole number in decimal digits only/.test(e.message),
        JSON.stringify(text),
      );
    }
  });

  it('reads decimal digits, and names the range when outside it', () => {
    assert.equal(parseInteger('0', 'VLAN', 0, 4094), 0);
    assert.equal(parseInteger('4094', 'VLAN', 0, 4094), 4094);
    assert.equal(parseInteger('-1', 'offset', -5, 5), -1);
    assert.throws(() => parseInteger('4095', 'VLAN', 0, 4094), /VLAN must be between 0 and 4094, got 4095/);
  });

  it('quotes at most a few dozen characters of a value', () => {
    const huge = 'x'.repeat(1_000_000);
    for (const parse of [() => parseInteger(huge, 'VLAN', 0, 4094), () => parseMac(huge), () => parseIfName(huge), () => parsePciAddress(huge)]) {
      assert.throws(parse, (e) => e instanceof SriovError && e.message.length < 200);
    }
    assert.equal(shown('a\nb'), '"a\\nb"');
  });
});
