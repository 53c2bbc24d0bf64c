// The agent's traffic sampler: deltas only, what moved only, resets and wraps never as huge deltas, small idle reports.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { counterDeltas, TrafficSampler, type CounterReader } from '../../src/agent/traffic-sampler.js';
import type { PfInfo, VfStats } from '../../src/host/model.js';
import type { PfCounterRead, VfCounterRead } from '../../src/host/ports.js';
import { TRAFFIC_LIMITS } from '../../src/domain/traffic-deltas.js';
import { makeHost } from '../helpers/inventory.js';

const c = (rxBytes: number, txBytes = 0, rxPackets = 0, txPackets = 0, rxDropped = 0, txDropped = 0): VfStats => ({ rxBytes, txBytes, rxPackets, txPackets, rxDropped, txDropped });

/** A reader whose answers the test sets before each sample. */
class Script implements CounterReader {
  next = new Map<string, PfCounterRead | Error>();
  async counters(pf: PfInfo): Promise<PfCounterRead> {
    const r = this.next.get(pf.name);
    if (!r) throw new Error(`no answer for ${pf.name}`);
    if (r instanceof Error) throw r;
    return r;
  }
}

const vf = (index: number, counters: VfStats | null, extra: Partial<VfCounterRead> = {}): VfCounterRead => ({ index, counters, source: counters ? 'vf-stats' : null, ...extra });

function world(vfs = 3) {
  const pfs = makeHost({ name: 'h1', pfs: 1, vfs }).inventory.pfs;
  const script = new Script();
  let now = 1_000_000;
  const sampler = new TrafficSampler(script, () => pfs, { intervalMs: 5000, clock: () => now });
  const step = async (read: PfCounterRead | Error, ms = 5000) => {
    now += ms;
    script.next.set(pfs[0]!.name, read);
    await sampler.sample();
  };
  return { pf: pfs[0]!.name, sampler, step };
}

describe('traffic sampler', () => {
  it('sends the deltas since the last sample, only of what moved, and nothing twice', async () => {
    const { pf, sampler, step } = world();
    await step({ pf: c(1000, 500), vfs: [vf(0, c(10)), vf(1, c(20)), vf(2, c(30))], simulated: false });
    assert.equal(sampler.take(), undefined, 'the first read is a baseline only');
    await step({ pf: c(1600, 500), vfs: [vf(0, c(10)), vf(1, c(25, 7, 1, 1)), vf(2, c(30))], simulated: false });
    await step({ pf: c(1600, 500), vfs: [vf(0, c(10)), vf(1, c(25, 7, 1, 1)), vf(2, c(31))], simulated: false });
    const t = sampler.take()!;
    assert.equal(t.intervalS, 5);
    assert.equal(t.simulated, undefined);
    assert.deepEqual(t.samples, [
      { t: 1_010_000, dt: 5000, pfs: [{ pf, d: [600, 0, 0, 0, 0, 0], vfs: [[1, 5, 7, 1, 1, 0, 0]] }] },
      { t: 1_015_000, dt: 5000, pfs: [{ pf, vfs: [[2, 1, 0, 0, 0, 0, 0]] }] },
    ]);
    assert.equal(t.notes, undefined);
    assert.equal(sampler.take(), undefined, 'taken once');
  });

  it('gives no delta for a counter that went backwards (driver reload, VF re-created, 32-bit wrap) and names it as reset', async () => {
    const { pf, sampler, step } = world();
    await step({ pf: c(5000), vfs: [vf(0, c(4_294_967_000)), vf(1, c(100))], simulated: false });
    await step({ pf: c(10), vfs: [vf(0, c(200)), vf(1, c(150))], simulated: false });
    const t = sampler.take()!;
    assert.deepEqual(t.samples[0]!.pfs, [{ pf, vfs: [[1, 50, 0, 0, 0, 0, 0]] }]);
    assert.deepEqual(t.notes, [{ pf, pfMissing: true, reset: [0] }]);
    // Counting goes on from the new values.
    await step({ pf: c(20), vfs: [vf(0, c(260)), vf(1, c(150))], simulated: false });
    assert.deepEqual(sampler.take()!.samples[0]!.pfs, [{ pf, d: [10, 0, 0, 0, 0, 0], vfs: [[0, 60, 0, 0, 0, 0, 0]] }]);
  });

  it('takes a jump faster than any link for a reset, and a change of source as one too', async () => {
    assert.equal(counterDeltas(c(0), c(1e12), 1000), null, '1 TB in a second is no traffic');
    assert.deepEqual(counterDeltas(c(0), c(1e9), 1000), [1e9, 0, 0, 0, 0, 0]);
    const { pf, sampler, step } = world(1);
    await step({ pf: c(0), vfs: [vf(0, c(100), { source: 'netdev' })], simulated: false });
    await step({ pf: c(0), vfs: [vf(0, c(150), { source: 'vf-stats' })], simulated: false });
    assert.deepEqual(sampler.take()!.notes, [{ pf, reset: [0], netdev: [0] }]);
  });

  it('names what cannot be read, grouped by why, never as zeros', async () => {
    const { pf, sampler, step } = world();
    const why = 'igb does not report per-VF counters (IFLA_VF_STATS) and the VF has no netdev in the host namespace';
    const read = { pf: c(0), vfs: [vf(0, null, { missing: why }), vf(1, c(5), { source: 'netdev' }), vf(2, null, { missing: why })], simulated: false };
    await step(read);
    await step(read);
    const t = sampler.take()!;
    assert.deepEqual(t.samples, [{ t: 1_010_000, dt: 5000 }]);
    assert.deepEqual(t.notes, [{ pf, missing: [{ why, vfs: [0, 2] }], netdev: [1] }]);
    await step(new Error('ip: timed out'));
    const failed = sampler.take()!;
    assert.equal(failed.notes![0]!.pfMissing, true);
    assert.match(failed.notes![0]!.missing![0]!.why, /reading .*'s counters failed: ip: timed out/);
  });

  it('keeps a bounded backlog while reports do not get through', async () => {
    const { sampler, step } = world(1);
    for (let i = 0; i < TRAFFIC_LIMITS.samples + 30; i++) await step({ pf: c(i), vfs: [vf(0, c(i))], simulated: true });
    const t = sampler.take()!;
    assert.equal(t.samples.length, TRAFFIC_LIMITS.samples);
    assert.equal(t.simulated, true);
    assert.ok(t.samples[0]!.t < t.samples.at(-1)!.t);
  });

  it('keeps an idle host’s liveness report under 1 KB with its counters (256 VFs)', async () => {
    const { sampler, step } = world(256);
    const read = { pf: c(0), vfs: Array.from({ length: 256 }, (_, i) => vf(i, c(7))), simulated: false };
    await step(read);
    await step(read);
    await step(read);
    const liveness = { host: 'h1', inventoryHash: 'a'.repeat(64), statuses: [], events: [], results: [] };
    const bytes = Buffer.byteLength(JSON.stringify({ ...liveness, traffic: sampler.take() }));
    assert.ok(bytes < 1024, `${bytes} bytes`);
  });
});
