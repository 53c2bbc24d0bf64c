// The simulated host's devlink beyond the contract: the drivers' own refusals and quirks (mlx5, ice, netdevsim's rules).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KernelError, type HostPorts } from '../../src/host/ports.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function simHost(profile: string): Promise<{ ports: HostPorts; pf: string; name: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-sim-devlink-'));
  dirs.push(dir);
  const file = join(dir, 'host.json');
  await initSimHost(file, { profile, pfs: 1 });
  const ports = createSimPorts(file);
  const [pf] = await ports.sysfs.listSriovPfs();
  const name = (await ports.sysfs.readPf(pf!)).netdevs[0]!;
  return { ports, pf: pf!, name };
}

const errnoOf = (errno: string) => (e: unknown) => e instanceof KernelError && e.errno === errno;

/** An mlx5 PF in switchdev mode with `n` unbound VFs. */
async function mlx5Switchdev(n: number) {
  const host = await simHost('mlx5');
  await host.ports.sysfs.writeAutoprobe(host.pf, false);
  await host.ports.sysfs.writeNumVfs(host.pf, n);
  await host.ports.devlink.setEswitchMode(host.pf, 'switchdev');
  return host;
}

describe('simulated devlink: driver rules', () => {
  it('mlx5 refuses an eswitch mode change while VFs are bound (EBUSY), and allows it once they are unbound', async () => {
    const { ports, pf } = await simHost('mlx5');
    await ports.sysfs.writeNumVfs(pf, 2);
    await assert.rejects(ports.devlink.setEswitchMode(pf, 'switchdev'), errnoOf('EBUSY'));
    assert.equal(await ports.devlink.eswitchMode(pf), 'legacy');
    const vfs = (await ports.sysfs.readPf(pf)).vfs;
    for (const vf of vfs) await ports.drivers.unbind(vf.pciAddress);
    await ports.devlink.setEswitchMode(pf, 'switchdev');
    assert.equal(await ports.devlink.eswitchMode(pf), 'switchdev');
  });

  it('ice changes mode only without VFs (EOPNOTSUPP), and forbids trust in switchdev', async () => {
    const { ports, pf, name } = await simHost('ice');
    await ports.sysfs.writeNumVfs(pf, 2);
    await assert.rejects(ports.devlink.setEswitchMode(pf, 'switchdev'), errnoOf('EOPNOTSUPP'));
    await ports.sysfs.writeNumVfs(pf, 0);
    await ports.devlink.setEswitchMode(pf, 'switchdev');
    await ports.sysfs.writeNumVfs(pf, 2);
    const result = await ports.links.applyVfOps(name, [{ vf: 0, field: 'trust', on: false }]);
    assert.equal(result.ok ? 'ok' : result.errno, 'EOPNOTSUPP');
  });

  it('a PF without an eswitch mode change (igb) answers EOPNOTSUPP', async () => {
    const { ports, pf } = await simHost('igb');
    await assert.rejects(ports.devlink.setEswitchMode(pf, 'switchdev'), errnoOf('EOPNOTSUPP'));
  });

  it('in switchdev mode, `ip link set <PF> vf N max_tx_rate` answers EOPNOTSUPP (even 0) on mlx5; other VF ops still work', async () => {
    const { ports, name } = await mlx5Switchdev(2);
    for (const max of [100, 0]) {
      const result = await ports.links.applyVfOps(name, [{ vf: 0, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: max }]);
      assert.equal(result.ok ? 'ok' : result.errno, 'EOPNOTSUPP');
    }
    assert.deepEqual(await ports.links.applyVfOps(name, [{ vf: 0, field: 'mac', mac: '02:00:00:00:00:01' }]), { ok: true });
  });

  it("mlx5 refuses tx_share/tx_max above the port's link speed, even with the link down, and keeps what came before (not atomic)", async () => {
    const { ports, pf } = await mlx5Switchdev(1);
    const leaf = (await ports.devlink.rates(pf)).find((r) => r.type === 'leaf')!.object;
    await assert.rejects(ports.devlink.setRate(leaf, { txShareMbps: 100_001 }), errnoOf('EINVAL'));
    await assert.rejects(ports.devlink.setRate(leaf, { txShareMbps: 50, txMaxMbps: 200_000 }), errnoOf('EINVAL'));
    const after = (await ports.devlink.rates(pf)).find((r) => r.object === leaf)!;
    assert.deepEqual([after.txShareMbps, after.txMaxMbps], [50, 0], 'tx_share took effect before tx_max was refused');
    await assert.rejects(ports.devlink.setRate(leaf, { txMaxMbps: 1.5 }), errnoOf('EINVAL'));
    await ports.devlink.setRate(leaf, { txMaxMbps: 100_000 });
  });

  it('a node whose rates are refused is not created', async () => {
    const { ports, pf } = await mlx5Switchdev(1);
    await assert.rejects(ports.devlink.addRateNode(pf, 'vfleet-a', { txShareMbps: 10, txMaxMbps: 999_999 }), errnoOf('EINVAL'));
    assert.deepEqual((await ports.devlink.rates(pf)).filter((r) => r.type === 'node'), []);
    await assert.rejects(ports.devlink.addRateNode(pf, '42', { txShareMbps: 0, txMaxMbps: 0 }), errnoOf('EINVAL'));
  });

  it('bnxt has an eswitch but rates through ip link: no rate objects, no nodes, and ip link rates still work in switchdev', async () => {
    const { ports, pf, name } = await simHost('bnxt');
    await ports.sysfs.writeNumVfs(pf, 2);
    await ports.devlink.setEswitchMode(pf, 'switchdev');
    assert.equal((await ports.devlink.ports(pf)).filter((p) => p.flavour === 'pcivf').length, 2);
    assert.deepEqual(await ports.devlink.rates(pf), []);
    await assert.rejects(ports.devlink.addRateNode(pf, 'vfleet-a', { txShareMbps: 0, txMaxMbps: 0 }), errnoOf('EOPNOTSUPP'));
    const result = await ports.links.applyVfOps(name, [{ vf: 0, field: 'rate', minTxRateMbps: 10, maxTxRateMbps: 100 }]);
    assert.equal(result.ok, true);
  });

  it('removing the VFs in switchdev destroys the rate nodes (mlx5 keeps switchdev)', async () => {
    const { ports, pf } = await mlx5Switchdev(2);
    await ports.devlink.addRateNode(pf, 'vfleet-a', { txShareMbps: 10, txMaxMbps: 100 });
    const leaf = (await ports.devlink.rates(pf)).find((r) => r.type === 'leaf')!.object;
    await ports.devlink.setRate(leaf, { parent: 'vfleet-a' });
    await ports.sysfs.writeNumVfs(pf, 0);
    assert.equal(await ports.devlink.eswitchMode(pf), 'switchdev');
    assert.deepEqual(await ports.devlink.rates(pf), []);
    await ports.sysfs.writeNumVfs(pf, 1);
    assert.deepEqual((await ports.devlink.rates(pf)).map((r) => [r.type, r.parent]), [['leaf', null]]);
  });

  it("the PF's device lists its uplink netdev first, then the representors", async () => {
    const { ports, pf, name } = await mlx5Switchdev(2);
    const netdevs = (await ports.sysfs.readPf(pf)).netdevs;
    assert.equal(netdevs[0], name);
    const reps = (await ports.devlink.ports(pf)).filter((p) => p.flavour === 'pcivf').map((p) => p.netdev);
    assert.deepEqual(netdevs.slice(1), reps);
  });
});
