// The host layer on the simulated host: VF rates through `ip link` in legacy
// mode and through devlink rate leaves in switchdev mode (read back either
// way), and eswitch mode changes in each driver's order, with rollback.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { setEswitchMode } from '../../src/host/eswitch.js';
import { SriovError } from '../../src/host/errors.js';
import { SCRUBBED_VF_CONFIG } from '../../src/host/model.js';
import { KernelError, type HostPorts, type VfOp } from '../../src/host/ports.js';
import { SimHost } from '../../src/sim/sim-host.js';
import type { SimProfileName } from '../../src/sim/profiles.js';
import { MemorySimState } from '../../src/sim/state.js';

const PF = 'ens1f0';

interface World {
  host: SriovHost;
  sim: SimHost;
  state: MemorySimState;
  /** The host writes, in order: `numvfs N`, `autoprobe on|off`, `bind BDF driver`, `unbind BDF`, `eswitch MODE`. */
  log: string[];
}

/** A simulated host whose ports log their writes; `wrap` may replace some. */
function world(profile: SimProfileName, wrap: (ports: HostPorts, log: string[]) => Partial<HostPorts> = () => ({})): World {
  const state = new MemorySimState({ profile, pfs: 2, hostname: 'sim-a' });
  const sim = new SimHost(state);
  const p = sim.ports;
  const log: string[] = [];
  const logged: HostPorts = {
    ...p,
    sysfs: {
      ...p.sysfs,
      writeNumVfs: async (pci, n) => (log.push(`numvfs ${n}`), p.sysfs.writeNumVfs(pci, n)),
      writeAutoprobe: async (pci, on) => (log.push(`autoprobe ${on ? 'on' : 'off'}`), p.sysfs.writeAutoprobe(pci, on)),
    },
    drivers: {
      bind: async (pci, driver) => (log.push(`bind ${pci} ${driver}`), p.drivers.bind(pci, driver)),
      unbind: async (pci) => (log.push(`unbind ${pci}`), p.drivers.unbind(pci)),
    },
    devlink: { ...p.devlink, setEswitchMode: async (dev, mode) => (log.push(`eswitch ${mode}`), p.devlink.setEswitchMode(dev, mode)) },
  };
  return { host: new SriovHost({ ...logged, ...wrap(logged, log) }), sim, state, log };
}

/** As mlx5 and ice answer `ip link set <PF> vf N max_tx_rate` in switchdev mode. */
function refuseLinkRatesInSwitchdev(ports: HostPorts): Partial<HostPorts> {
  return {
    links: {
      ...ports.links,
      applyVfOps: async (pf, ops: VfOp[], opts) => {
        const address = await ports.sysfs.pciAddressOfNetdev(pf);
        const mode = address ? await ports.devlink.eswitchMode(address) : null;
        const at = ops.findIndex((op) => op.field === 'rate');
        if (mode === 'switchdev' && at >= 0) return { ok: false, failedAt: at, errno: 'EOPNOTSUPP', message: 'RTNETLINK answers: Operation not supported' };
        return ports.links.applyVfOps(pf, ops, opts);
      },
    },
  };
}

const leaves = async (w: World) => {
  const pf = await w.host.pf(PF);
  return (await w.sim.ports.devlink.rates(pf.pciAddress)).filter((r) => r.type === 'leaf').map((r) => [r.object.split('/').pop(), r.txShareMbps, r.txMaxMbps]);
};

describe('VF rates in both eswitch modes', () => {
  it('legacy mode: ip link min_tx_rate/max_tx_rate, read back from the vfinfo; no rate objects', async () => {
    const w = world('mlx5');
    await w.host.setNumVfs(PF, 4);
    const ops = await w.host.setVfSettings(PF, [{ vf: 1, settings: { minTxRateMbps: 100, maxTxRateMbps: 2000 } }]);
    assert.deepEqual(ops, [{ vf: 1, field: 'rate', minTxRateMbps: 100, maxTxRateMbps: 2000 }]);
    const pf = await w.host.pf(PF);
    assert.deepEqual([pf.vfs[1]!.minTxRateMbps, pf.vfs[1]!.maxTxRateMbps], [100, 2000]);
    assert.deepEqual(await w.sim.ports.devlink.rates(pf.pciAddress), []);
  });

  it('switchdev mode on mlx5: tx_share/tx_max on the VF leaf, never ip link; read back, idempotent, scrubbed to 0', async () => {
    const w = world('mlx5', refuseLinkRatesInSwitchdev);
    await w.host.setNumVfs(PF, 4);
    assert.equal(await setEswitchMode(w.host, PF, 'switchdev'), true);
    const pf = await w.host.pf(PF);
    const applied = await w.host.applyVfSettings(pf, [
      { vf: 1, settings: { minTxRateMbps: 100, maxTxRateMbps: 2000, vlan: 10 } },
      { vf: 2, settings: { maxTxRateMbps: 500 } },
    ]);
    assert.deepEqual(applied.ops.map((op) => op.field), ['vlan', 'rate', 'rate']);
    assert.deepEqual(await leaves(w), [['128', 0, 0], ['129', 100, 2000], ['130', 0, 500], ['131', 0, 0]]);
    // The model the agent keeps reads the leaves' rates, and the VLAN went through ip link.
    assert.deepEqual([applied.pf.vfs[1]!.minTxRateMbps, applied.pf.vfs[1]!.maxTxRateMbps, applied.pf.vfs[1]!.vlan], [100, 2000, 10]);
    const again = await w.host.applyVfSettings(applied.pf, [{ vf: 1, settings: { minTxRateMbps: 100, maxTxRateMbps: 2000 } }]);
    assert.deepEqual(again.ops, [], 'the leaf already has these rates');
    // Scrub: back to no tenant, the leaf's rates cleared too.
    const scrubbed = await w.host.applyVfSettings(await w.host.pf(PF), [{ vf: 1, settings: { ...SCRUBBED_VF_CONFIG } }]);
    assert.deepEqual(scrubbed.ops.map((op) => op.field), ['vlan', 'rate']);
    assert.deepEqual((await leaves(w))[1], ['129', 0, 0]);
  });

  it('a leaf the driver refuses: the error names the VF, what was applied and what was not', async () => {
    const w = world('mlx5', (p) => ({
      devlink: {
        ...p.devlink,
        setRate: async (object, change) => {
          if (object.endsWith('/130')) throw new KernelError('EINVAL', `devlink port function rate set ${object}`, 'TX rate value not in link speed units of 1Mbps.');
          return p.devlink.setRate(object, change);
        },
      },
    }));
    await w.host.setNumVfs(PF, 4);
    await setEswitchMode(w.host, PF, 'switchdev');
    const refused = await w.host.setVfSettings(PF, [
      { vf: 1, settings: { maxTxRateMbps: 1000 } },
      { vf: 2, settings: { maxTxRateMbps: 1000 } },
    ]).then(
      () => assert.fail('vf 2 must be refused'),
      (err: unknown) => err as SriovError,
    );
    assert.ok(refused instanceof SriovError);
    assert.match(refused.message, /refused vf 2 minTxRateMbps=0 maxTxRateMbps=1000: .*TX rate value/);
    assert.deepEqual(refused.details.applied, ['vf 1 minTxRateMbps=0 maxTxRateMbps=1000']);
    assert.deepEqual(refused.details.notApplied, ['vf 2 minTxRateMbps=0 maxTxRateMbps=1000']);
  });
});

describe('eswitch mode changes in the driver order', () => {
  it('mlx5 (vfs-unbound): the VFs unbound, the mode set, the VFs rebound; read back; and back to legacy', async () => {
    const w = world('mlx5');
    await w.host.setNumVfs(PF, 2, { deviceType: 'netdevice' });
    const before = await w.host.pf(PF);
    const [a, b] = before.vfs.map((vf) => vf.pciAddress);
    w.log.length = 0;
    assert.equal(await setEswitchMode(w.host, PF, 'switchdev'), true);
    assert.deepEqual(w.log, [`unbind ${a}`, `unbind ${b}`, 'eswitch switchdev', `bind ${a} mlx5_core`, `bind ${b} mlx5_core`]);
    const after = await w.host.pf(PF);
    assert.equal(after.eswitchMode, 'switchdev');
    assert.deepEqual(after.vfs.map((vf) => vf.driver), ['mlx5_core', 'mlx5_core']);
    assert.equal(await setEswitchMode(w.host, PF, 'switchdev'), false, 'already switchdev: nothing to do');
    assert.equal(await setEswitchMode(w.host, PF, 'legacy'), true);
    assert.equal((await w.host.pf(PF)).eswitchMode, 'legacy');
  });

  it('ice (no-vfs): the VFs removed, the mode set, the VFs made again', async () => {
    const w = world('ice');
    await w.host.setNumVfs(PF, 4, { deviceType: 'netdevice' });
    w.log.length = 0;
    await setEswitchMode(w.host, PF, 'switchdev');
    const writes = w.log.filter((l) => !l.startsWith('bind') && !l.startsWith('autoprobe'));
    assert.deepEqual(writes, ['numvfs 0', 'eswitch switchdev', 'numvfs 4']);
    const pf = await w.host.pf(PF);
    assert.equal(pf.eswitchMode, 'switchdev');
    assert.equal(pf.numVfs, 4);
    assert.deepEqual(pf.vfs.map((vf) => vf.driver), ['iavf', 'iavf', 'iavf', 'iavf']);
  });

  it('a PF whose driver has no eswitch is refused, naming the PF and its driver; nothing changes', async () => {
    const w = world('igb');
    await assert.rejects(setEswitchMode(w.host, PF, 'switchdev'), (err: SriovError) => {
      assert.equal(err.code, 'UNSUPPORTED');
      assert.match(err.message, /eswitchMode: ens1f0 \(0000:3b:00\.0\) cannot change its eswitch mode: its driver igb has no devlink eswitch/);
      return true;
    });
    assert.deepEqual(w.log, []);
  });

  it('a failed eswitch set that changed the mode all the same: read back, and the PF restored to legacy with its VFs bound', async () => {
    const w = world('mlx5', (p) => ({
      devlink: {
        ...p.devlink,
        setEswitchMode: async (dev, mode) => {
          await p.devlink.setEswitchMode(dev, mode);
          if (mode === 'switchdev') throw new KernelError('EINVAL', `devlink dev eswitch set ${dev} mode ${mode}`, 'Failed setting eswitch to offloads');
        },
      },
    }));
    await w.host.setNumVfs(PF, 3, { deviceType: 'netdevice' });
    await assert.rejects(setEswitchMode(w.host, PF, 'switchdev'), (err: SriovError) => {
      assert.equal(err.code, 'HOST_ERROR');
      assert.match(err.message, /Failed setting eswitch to offloads; devlink shows mode switchdev all the same; ens1f0 restored to eswitch mode legacy with 3 VFs/);
      return true;
    });
    const pf = await w.host.pf(PF);
    assert.equal(pf.eswitchMode, 'legacy');
    assert.deepEqual(pf.vfs.map((vf) => vf.driver), ['mlx5_core', 'mlx5_core', 'mlx5_core']);
  });

  it('ice: a refused eswitch set puts the removed VFs back', async () => {
    const w = world('ice', (p) => ({
      devlink: {
        ...p.devlink,
        setEswitchMode: async (dev, mode) => {
          if (mode === 'switchdev') throw new KernelError('EOPNOTSUPP', `devlink dev eswitch set ${dev} mode ${mode}`, 'Operation not supported');
          return p.devlink.setEswitchMode(dev, mode);
        },
      },
    }));
    await w.host.setNumVfs(PF, 4, { deviceType: 'vfio-pci' });
    await assert.rejects(setEswitchMode(w.host, PF, 'switchdev'), (err: SriovError) => {
      assert.equal(err.code, 'UNSUPPORTED');
      assert.match(err.message, /Operation not supported; ens1f0 restored to eswitch mode legacy with 4 VFs$/);
      return true;
    });
    const pf = await w.host.pf(PF);
    assert.equal(pf.eswitchMode, 'legacy');
    assert.equal(pf.numVfs, 4);
    assert.deepEqual(pf.vfs.map((vf) => vf.driver), ['vfio-pci', 'vfio-pci', 'vfio-pci', 'vfio-pci']);
  });

  it('a driver without VF functions (netdevsim): VFs made and the mode changed with no autoprobe, unbind or bind', async () => {
    const w = world('mlx5');
    await w.state.update((s) => {
      s.pfs[0]!.driver = 'netdevsim';
    });
    w.log.length = 0;
    await w.host.setNumVfs(PF, 2, { deviceType: 'netdevice' });
    await setEswitchMode(w.host, PF, 'switchdev');
    assert.deepEqual(w.log, ['numvfs 2', 'eswitch switchdev']);
    assert.equal((await w.host.pf(PF)).eswitchMode, 'switchdev');
  });
});
