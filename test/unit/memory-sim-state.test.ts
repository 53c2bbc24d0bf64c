import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { KernelError, type HostPorts } from '../../src/host/ports.js';
import { SimHost } from '../../src/sim/sim-host.js';
import { MemorySimState, initSimHost } from '../../src/sim/state.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-memsim-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const OPTS = { profile: 'i40e', pfs: 2, numaNodes: 2, hostname: 'mem-1' };

/** The same changes on any simulated host: VFs on both PFs, then one VF configured. */
async function provision(ports: HostPorts): Promise<void> {
  const pfs = await ports.sysfs.listSriovPfs();
  for (const pf of pfs) await ports.sysfs.writeNumVfs(pf, 4);
  const op = { vf: 1, field: 'vlan', vlan: 100, qos: 0, vlanProto: '802.1Q' } as const;
  // i40e: the first op on a new VF meets its reset (EAGAIN); the second goes through, as on the file host.
  if (!(await ports.links.applyVfOps('ens1f0', [op])).ok) await ports.links.applyVfOps('ens1f0', [op]);
}

describe('sim host in memory', () => {
  it('acts like the same host in a file: same inventory after the same changes', async () => {
    const file = join(dir, 'mem-1.json');
    await initSimHost(file, OPTS);
    const onFile = new SimHost(file).ports;
    const inMemory = new SimHost(new MemorySimState(OPTS)).ports;
    await provision(onFile);
    await provision(inMemory);
    const a = await new SriovHost(onFile).inventory();
    const b = await new SriovHost(inMemory).inventory();
    assert.notEqual(a.bootId, b.bootId, 'two kernels, two boot ids');
    assert.deepEqual({ ...b, bootId: undefined }, { ...a, bootId: undefined });
    assert.equal(b.pfs.flatMap((p) => p.vfs).length, 8);
    assert.equal(b.pfs[0]!.vfs[1]!.vlan, 100);
  });

  it('a refused change changes nothing', async () => {
    const ports = new SimHost(new MemorySimState(OPTS)).ports;
    const [pf] = await ports.sysfs.listSriovPfs();
    await ports.sysfs.writeNumVfs(pf!, 2);
    await assert.rejects(ports.sysfs.writeNumVfs(pf!, 3), (e) => e instanceof KernelError && e.errno === 'EBUSY');
    assert.equal((await ports.sysfs.readPf(pf!)).numVfs, 2);
  });

  it('an update that throws half way leaves the state as it was', async () => {
    const state = new MemorySimState(OPTS);
    await assert.rejects(
      state.update((s) => {
        s.pfs[0]!.mtu = 9000;
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal((await state.read()).pfs[0]!.mtu, 1500);
  });

  it('readers get frozen snapshots that later changes leave alone', async () => {
    const state = new MemorySimState(OPTS);
    const before = await state.read();
    assert.ok(Object.isFrozen(before.pfs[0]));
    await state.update((s) => void (s.pfs[0]!.mtu = 9000));
    assert.equal(before.pfs[0]!.mtu, 1500);
    assert.equal(state.readSync().pfs[0]!.mtu, 9000);
  });

  it('keeps one boot id and its hostname', async () => {
    const ports = new SimHost(new MemorySimState(OPTS)).ports;
    const id = await ports.bootId!();
    assert.match(id ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(await ports.bootId!(), id);
    assert.equal(ports.hostname(), 'mem-1');
  });

  it('refuses a bad host as the file host does', () => {
    assert.throws(() => new MemorySimState({ ...OPTS, profile: 'e1000' }), /unknown sim profile/);
    assert.throws(() => new MemorySimState({ ...OPTS, pfs: 0 }), /pfs/);
  });
});
