// Two controllers on a real three-member etcd: each keeps its memory current
// from the store's watch (an agent long-polling controller 1 is woken by a
// change written through controller 2, and so is an event stream open on
// controller 1, which does not poll), the last VF goes to exactly one of
// them, a burst through both hands no VF or MAC out twice, the last guarantee
// bandwidth of a PF goes to exactly one (a burst never over-commits a PF, even
// on VFs each controller chose apart), and one leads
// the background work: when it dies, the standby takes over within the
// lease's TTL and marks a silent host unreachable.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildServer } from '../../src/api/server.js';
import { ControlPlane, type ControlPlaneOptions } from '../../src/controller/control-plane.js';
import type { Allocation } from '../../src/domain/types.js';
import type { SriovError } from '../../src/host/errors.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { inventoryOf, policyOf } from '../helpers/api-harness.js';
import { startEtcd, type EtcdCluster } from '../support/etcd.js';

const ADMIN = { id: 'test', role: 'admin' } as const;
const TTL_S = 2;
const POLL_MS = 30_000;
/** Two PFs of 4 VFs each. */
const VFS = 8;
const agentOf = (host: string) => ({ id: 'local', role: `agent:${host}` }) as const;
const vm = (name: string) => ({ kind: 'vm' as const, name });

const HEARTBEAT_TIMEOUT_MS = 1_500;

/**
 * A controller in its own process, so that it can die as one does (SIGKILL:
 * no resign), leading the background work once elected. Resolves when it leads.
 */
async function leaderProcess(url: string): Promise<ChildProcess> {
  const at = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
  const script = `
    const { openStore } = await import(${at('../../src/store/open.js')});
    const { ControlPlane } = await import(${at('../../src/controller/control-plane.js')});
    const store = await openStore({ url: ${JSON.stringify(url)}, dataDir: '/nonexistent', electionTtlS: ${TTL_S} });
    const control = await ControlPlane.open(store, { resume: false, heartbeatTimeoutMs: ${HEARTBEAT_TIMEOUT_MS} });
    const leadership = await store.campaign('child');
    control.lead(leadership, { sweepMs: 200, onError: () => {}, onChange: (leader) => process.stdout.write(leader ? 'leader\\n' : 'standby\\n') });
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('leader') && resolve());
    child.once('exit', (code) => reject(new Error(`the leader's process exited ${code}`)));
  });
  return child;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

interface Controller {
  store: Store;
  control: ControlPlane;
}

describe('two controllers on a three-member etcd', { timeout: 180_000 }, () => {
  let etcd: EtcdCluster;
  const opened: Controller[] = [];
  const open = async (prefix: string, opts: ControlPlaneOptions = {}): Promise<Controller> => {
    const store = await openStore({ url: `${etcd.storeUrl}${prefix}`, dataDir: '/nonexistent', electionTtlS: TTL_S });
    const control = await ControlPlane.open(store, { resume: false, onSyncError: (e) => assert.fail(e as Error), ...opts });
    const c = { store, control };
    opened.push(c);
    return c;
  };
  const close = async (c: Controller) => {
    c.control.shutdown();
    await c.store.close();
  };
  const setUp = async (c: Controller, host: string) => {
    await c.control.hosts.report(agentOf(host), inventoryOf(host));
    await c.control.hosts.putPolicy(ADMIN, host, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    await c.control.networks.createTenant(ADMIN, 'blue');
    await c.control.networks.createNetwork(ADMIN, { name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100 });
  };
  const free = async (c: Controller, host: string) => (await c.control.networks.capacity(ADMIN, 'blue', host).catch(() => null))?.freeVfs;

  before(async () => {
    etcd = await startEtcd(3);
  });
  after(async () => {
    for (const c of opened) await close(c).catch(() => {});
    await etcd?.stop();
  });

  it('wakes an agent long-polling controller 1 with a change written through controller 2', async (t) => {
    const [c1, c2] = [await open('/sync'), await open('/sync')];
    await setUp(c2, 'h1');
    await until('controller 1 places on h1', async () => ((await free(c1, 'h1')) === VFS ? true : undefined));
    const { revision } = await c1.control.hosts.desired(agentOf('h1'), 'h1');
    const polled = c1.control.hosts.desired(agentOf('h1'), 'h1', revision, POLL_MS);
    const start = Date.now();
    const a = await c2.control.allocations.create(ADMIN, { network: 'blue', workload: vm('web') });
    const desired = await polled;
    t.diagnostic(`controller 1's long poll woken ${Date.now() - start} ms after controller 2 began the allocation`);
    assert.notEqual(desired.revision, revision, 'woken by the change, not by the timeout');
    assert.deepEqual(desired.allocations.map((x) => x.id), [a.id]);
  });

  it('pushes an event written through controller 2 to an event stream open on controller 1, which does not poll', async () => {
    const [c1, c2] = [await open('/events'), await open('/events')];
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-events-'));
    // No heartbeat within the test: only the watch's news of the append can wake the stream.
    const app = await buildServer({ control: c1.control, controllerHost: 'ctl-1', version: 'test', eventStream: { heartbeatMs: 600_000 } });
    const abort = new AbortController();
    try {
      const token = (await readFile(await c1.control.tokens.bootstrapAdmin(dir), 'utf8')).trim();
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const res = await fetch(`${base}/v1/events/stream?object=tenant/from-two`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
      assert.equal(res.status, 200);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      while (!text.includes('retry:')) text += (await reader.read()).value ?? '';
      await c2.control.networks.createTenant(ADMIN, 'from-two');
      while (!text.includes('event: audit')) {
        const { value, done } = await reader.read();
        assert.equal(done, false, 'the stream ended before the event came');
        text += value;
      }
      const data = /data: (.*)\n/.exec(text.slice(text.indexOf('event: audit')))![1]!;
      assert.equal((JSON.parse(data) as { action: string; object: string }).object, 'tenant/from-two');
    } finally {
      abort.abort();
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('hands the last VF to exactly one of two controllers racing for it, and no VF or MAC twice in a burst', async (t) => {
    const [c1, c2] = [await open('/race'), await open('/race')];
    await setUp(c1, 'h1');
    await until('controller 2 places on h1', async () => ((await free(c2, 'h1')) === VFS ? true : undefined));
    // A burst through both, with room for all: nothing is held twice.
    const burst = await Promise.allSettled([c1, c2, c1, c2, c1, c2].map((c, i) => c.control.allocations.create(ADMIN, { network: 'blue', workload: vm(`burst-${i}`) })));
    t.diagnostic(`burst of 6 through 2 controllers: ${burst.filter((r) => r.status === 'fulfilled').length} placed, refused: ${burst.flatMap((r) => (r.status === 'rejected' ? [(r.reason as SriovError).code] : [])).join(', ') || 'none'}`);
    // Two controllers choosing the same VF at once: the loser decides again once it knows the winner's, rather than refusing.
    assert.deepEqual(burst.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), [], 'room for all six');
    const held = async () => (await c1.store.tx.listAllocations({ holding: true })) as Allocation[];
    const unique = (list: Allocation[]) => {
      assert.equal(new Set(list.map((a) => a.pciAddress)).size, list.length, 'no VF held twice');
      assert.equal(new Set(list.map((a) => a.mac)).size, list.length, 'no MAC held twice');
    };
    unique(await held());
    // Fill up to one free VF, then both race for it.
    let n = 0;
    while ((await held()).length < VFS - 1) await c1.control.allocations.create(ADMIN, { network: 'blue', workload: vm(`fill-${n++}`) }).catch(() => {});
    await until('both see one VF left', async () => ((await free(c1, 'h1')) === 1 && (await free(c2, 'h1')) === 1 ? true : undefined));
    const race = await Promise.allSettled([c1, c2].map((c, i) => c.control.allocations.create(ADMIN, { network: 'blue', workload: vm(`last-${i}`) })));
    assert.equal(race.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one wins');
    const lost = race.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(['CONFLICT', 'NO_CAPACITY'].includes((lost.reason as SriovError).code), String(lost.reason));
    unique(await held());
    assert.equal((await held()).length, VFS);
    await until('both see none left', async () => ((await free(c1, 'h1')) === 0 && (await free(c2, 'h1')) === 0 ? true : undefined));
  });

  describe('guarantee bandwidth', () => {
    /** 2 PFs of 4 VFs and 100,000 Mbps each: room for 2 guarantees of 40,000 Mbps per PF, 4 in all. */
    const GUARANTEE = 40_000;
    const LINK = 100_000;
    const setUpGuarantees = async (c: Controller, host: string) => {
      await c.control.hosts.report(agentOf(host), inventoryOf(host));
      await c.control.hosts.putPolicy(ADMIN, host, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
      await c.control.networks.createTenant(ADMIN, 'blue');
      await c.control.networks.createNetwork(ADMIN, { name: 'gold', tenant: 'blue', physnet: 'fabric', vlan: 200, minTxRateMbps: GUARANTEE });
    };
    const freeGold = async (c: Controller, host: string) => (await c.control.networks.capacity(ADMIN, 'gold', host).catch(() => null))?.freeVfs;
    /** Mbps committed per PF, from the store, and that no PF is over its link. */
    const committed = async (c: Controller) => {
      const byPf = new Map<string, number>();
      for (const a of await c.store.tx.listAllocations({ holding: true })) byPf.set(a.pf, (byPf.get(a.pf) ?? 0) + a.minTxRateMbps);
      for (const [pf, mbps] of byPf) assert.ok(mbps <= LINK, `${pf} has ${mbps} Mbps of guarantees committed, over its ${LINK} Mbps link`);
      return byPf;
    };
    const refusals = (results: PromiseSettledResult<unknown>[]) => results.flatMap((r) => (r.status === 'rejected' ? [r.reason as SriovError] : []));
    const assertAdmissionRefusals = (errors: SriovError[]) => {
      for (const e of errors) {
        assert.equal(e.code, 'NO_CAPACITY', String(e));
        assert.match(e.message, /40000 Mbps/, 'names the guarantee that does not fit');
      }
    };

    it('a burst through both controllers, on VFs each chose apart (pinned): one PF is never over-committed', async (t) => {
      const [c1, c2] = [await open('/bw-pinned'), await open('/bw-pinned')];
      await setUpGuarantees(c1, 'h1');
      await until('controller 2 places gold on h1', async () => ((await freeGold(c2, 'h1')) === VFS ? true : undefined));
      // Four VFs of one PF, two through each controller: each controller's own index admits its two.
      const vfs = inventoryOf('h1').pfs[0]!.vfs.map((vf) => vf.pciAddress);
      const burst = await Promise.allSettled(
        vfs.map((pciAddress, i) => (i % 2 === 0 ? c1 : c2).control.allocations.create(ADMIN, { network: 'gold', workload: vm(`pinned-${i}`), host: 'h1', pciAddress })),
      );
      const refused = refusals(burst);
      t.diagnostic(`pinned burst of 4 on one PF through 2 controllers: ${4 - refused.length} placed; refused: ${refused.map((e) => `${e.code} (${e.message})`).join('; ')}`);
      assert.equal(burst.filter((r) => r.status === 'fulfilled').length, 2, 'room for two on the PF');
      assertAdmissionRefusals(refused);
      assert.deepEqual([...(await committed(c1))], [['ens1f0', 2 * GUARANTEE]]);
    });

    it('hands the last guarantee bandwidth to exactly one of two controllers racing for it, and a burst does not over-commit', async (t) => {
      const [c1, c2] = [await open('/bw-race'), await open('/bw-race')];
      await setUpGuarantees(c1, 'h1');
      await until('controller 2 places gold on h1', async () => ((await freeGold(c2, 'h1')) === VFS ? true : undefined));
      // Six through both, with room for three: the fourth guarantee is left for the race.
      const burst = await Promise.allSettled([c1, c2, c1, c2, c1, c2].map((c, i) => c.control.allocations.create(ADMIN, { network: 'gold', workload: vm(`burst-${i}`) }).then((a) => ({ a, i }))));
      const placed = burst.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      t.diagnostic(`burst of 6 through 2 controllers, room for 4: ${placed.length} placed; refused: ${refusals(burst).map((e) => e.code).join(', ') || 'none'}`);
      assert.equal(placed.length, 4, 'room for four guarantees on the two PFs');
      assertAdmissionRefusals(refusals(burst));
      assert.deepEqual([...(await committed(c1))].sort(), [['ens1f0', 2 * GUARANTEE], ['ens2f0', 2 * GUARANTEE]]);
      // One released through controller 1: both see room for one more, on that PF's three free VFs, and race for it.
      await c1.control.allocations.delete(ADMIN, placed[0]!.a.id);
      await c1.control.allocations.applyStatus('h1', [{ id: placed[0]!.a.id, state: 'released' }]);
      await until('both see room for one guarantee', async () => ((await freeGold(c1, 'h1')) === 3 && (await freeGold(c2, 'h1')) === 3 ? true : undefined));
      const race = await Promise.allSettled([c1, c2].map((c, i) => c.control.allocations.create(ADMIN, { network: 'gold', workload: vm(`last-${i}`) })));
      assert.equal(race.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one wins');
      const lost = refusals(race);
      t.diagnostic(`the loser's answer: ${lost.map(String).join('; ')}`);
      assertAdmissionRefusals(lost);
      assert.deepEqual([...(await committed(c1))].sort(), [['ens1f0', 2 * GUARANTEE], ['ens2f0', 2 * GUARANTEE]]);
      await until('both see no room', async () => ((await freeGold(c1, 'h1')) === 0 && (await freeGold(c2, 'h1')) === 0 ? true : undefined));
    });
  });

  it('tenant bandwidth groups: the last group share of a PF goes to one of two controllers, and a share raise racing a placement cannot both win', async (t) => {
    const [c1, c2] = [await open('/group-race'), await open('/group-race')];
    // One PF of 4 VFs and 100,000 Mbps; the physnet accounts groups (legacy ice has no rate nodes).
    await c1.control.hosts.report(agentOf('h1'), inventoryOf('h1'));
    await c1.control.hosts.putPolicy(ADMIN, 'h1', policyOf([['fabric', 'ens1f0', 'fabric']]));
    await c1.control.networks.putPhysnet(ADMIN, 'fabric', { groupsAccountingOnly: true });
    const TENANTS = ['red', 'green', 'gold', 'teal'];
    for (const [i, name] of TENANTS.entries()) {
      await c1.control.networks.createTenant(ADMIN, name);
      await c1.control.networks.setTenant(ADMIN, name, { pfMinTxRateMbps: 60_000 });
      await c1.control.networks.createNetwork(ADMIN, { name, tenant: name, physnet: 'fabric', vlan: 300 + i });
    }
    const share = (c: Controller, tenant: string) => c.control.ctx.scheduler.tenantGroup(tenant)?.shareMbps;
    const freeOn = async (c: Controller, network: string) => (await c.control.networks.capacity(ADMIN, network, 'h1').catch(() => null))?.freeVfs;
    await until('controller 2 knows both groups and places on h1', async () =>
      TENANTS.every((name) => share(c2, name) === 60_000) && (await freeOn(c2, 'teal')) === 4 ? true : undefined,
    );
    /** What the PF commits, from the store: each tenant holding VFs there counts max(share, its guarantees) once. */
    const committedMbps = async () => {
      const tenants = new Set((await c1.store.tx.listAllocations({ holding: true })).map((a) => a.tenant));
      let sum = 0;
      for (const name of tenants) sum += (await c1.store.tx.getTenant(name))?.pfMinTxRateMbps ?? 0;
      return sum;
    };
    // Four tenants' first VFs, two through each controller, each on its own VF (pinned, so that no VF claim decides it):
    // each index has room for any one share (100,000 Mbps); the PF for one.
    const vfs = inventoryOf('h1').pfs[0]!.vfs.map((vf) => vf.pciAddress);
    const race = await Promise.allSettled(
      TENANTS.map((name, i) => (i % 2 === 0 ? c1 : c2).control.allocations.create(ADMIN, { network: name, workload: vm(`${name}-0`), host: 'h1', pciAddress: vfs[i]! })),
    );
    const refused = race.flatMap((r) => (r.status === 'rejected' ? [r.reason as SriovError] : []));
    t.diagnostic(`four first VFs of 60,000 Mbps groups on one 100,000 Mbps PF: ${4 - refused.length} placed; refused: ${refused.map(String).join('; ')}`);
    assert.equal(refused.length, 3, 'exactly one wins');
    for (const e of refused) {
      assert.equal(e.code, 'NO_CAPACITY', String(e));
      assert.match(e.message, /headroom is 40000 Mbps|PF's headroom is 40000 Mbps/);
    }
    assert.equal(await committedMbps(), 60_000);
    const winner = TENANTS[race.findIndex((r) => r.status === 'fulfilled')]!;
    const loser = TENANTS.find((name, i) => name !== winner && i % 2 === 1)!;
    // The winner's share lowered to 30,000: the loser's 60,000 fits beside it, and so does a raise back to 50,000, not both.
    await c1.control.networks.setTenant(ADMIN, winner, { pfMinTxRateMbps: 30_000 });
    await until('controller 2 sees the lowered share', async () => (share(c2, winner) === 30_000 ? true : undefined));
    const raceSet = await Promise.allSettled([
      c1.control.networks.setTenant(ADMIN, winner, { pfMinTxRateMbps: 50_000 }),
      c2.control.allocations.create(ADMIN, { network: loser, workload: vm(`${loser}-1`) }),
    ]);
    const lost = raceSet.flatMap((r) => (r.status === 'rejected' ? [r.reason as SriovError] : []));
    t.diagnostic(`a share raise racing a placement: ${raceSet.map((r) => r.status).join(', ')}; the loser's answer: ${lost.map(String).join('; ')}`);
    assert.equal(lost.length, 1, 'not both');
    assert.ok(['CONFLICT', 'NO_CAPACITY'].includes(lost[0]!.code), String(lost[0]));
    const after = await committedMbps();
    assert.ok(after <= 100_000, `the PF commits ${after} Mbps, over its 100,000 Mbps link`);
    assert.equal(after, raceSet[0]!.status === 'fulfilled' ? 50_000 : 90_000);
  });

  it('runs the background work on the leader only; when it is killed, the standby takes over within the TTL and sweeps', async (t) => {
    const child = await leaderProcess(`${etcd.storeUrl}/lead`);
    let killed = false;
    try {
      const standby = await open('/lead', { heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS });
      const leadership = await standby.store.campaign('standby');
      let gained = 0;
      const work = standby.control.lead(leadership, { sweepMs: 200, onError: () => {}, onChange: (leader) => void (leader && gained++) });
      assert.equal(leadership.leader, false);
      assert.equal(work.active, false, 'the standby runs no background work');
      child.kill('SIGKILL');
      killed = true;
      const died = Date.now();
      await until('the standby leads', async () => (leadership.leader ? true : undefined), TTL_S * 1000 * 5);
      t.diagnostic(`the standby took over ${Date.now() - died} ms after the leader was killed (lease TTL ${TTL_S} s)`);
      assert.equal(work.active, true);
      assert.equal(gained, 1, 'it resumed migrations once, on gaining leadership');
      // A host that reports once and falls silent is marked unreachable by the new leader.
      await standby.control.hosts.report(agentOf('h9'), inventoryOf('h9', 9));
      await until('h9 unreachable', async () => ((await standby.store.tx.getHost('h9'))?.state === 'unreachable' ? true : undefined));
      await work.stop();
    } finally {
      if (!killed) child.kill('SIGKILL');
    }
  });
});
