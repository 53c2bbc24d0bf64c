// The controller's traffic window: buckets on the controller's clock, rates over the time a series was read, bounded per host.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_SERIES_PER_HOST, TrafficWindow, vfKey } from '../../src/controller/traffic-window.js';
import type { TrafficDeltas } from '../../src/domain/traffic-deltas.js';

const T0 = 1_800_000_000_000; // a bucket boundary (10 s)

function deltas(samples: TrafficDeltas['samples'], notes?: TrafficDeltas['notes']): TrafficDeltas {
  return { intervalS: 5, samples, ...(notes ? { notes } : {}) };
}

describe('traffic window', () => {
  it('sums samples into buckets and gives rates per second over the bucket', () => {
    let now = T0 + 10_000;
    const w = new TrafficWindow({ now: () => now });
    // The agent's clock is an hour behind: samples are placed by when the report arrived.
    const skew = -3_600_000;
    w.ingest('h1', deltas([
      { t: T0 + 5000 + skew, dt: 5000, pfs: [{ pf: 'eth0', d: [5000, 0, 50, 0, 0, 0], vfs: [[2, 1000, 2000, 10, 20, 1, 0]] }] },
      { t: T0 + 10_000 + skew, dt: 5000, pfs: [{ pf: 'eth0', d: [5000, 0, 50, 0, 0, 0] }] },
    ]), now);
    const h = w.host('h1')!;
    const pf = w.points(h, 'eth0');
    assert.deepEqual(pf.map((p) => p.rates[0]), [1000, 1000], 'one sample in the first bucket, one in the next');
    const v = w.points(h, vfKey('eth0', 2));
    assert.deepEqual(v.map((p) => p.rates), [[200, 400, 2, 4, 0.2, 0], [0, 0, 0, 0, 0, 0]], 'a VF absent from a sample moved nothing in it');
    assert.equal(v[0]!.t, T0 + 5000);
    // A VF that never moved reads as zeros wherever its host reported.
    assert.deepEqual(w.points(h, vfKey('eth0', 5)).map((p) => p.rates[0]), [0, 0]);
    now += 1;
    assert.deepEqual(w.points(h, vfKey('eth0', 2), { from: T0 + 10_000 }).map((p) => p.t), [T0 + 10_000], '`from` leaves out earlier buckets');
  });

  it('leaves a gap, not a zero, where a series could not be read, and says why', () => {
    const now = T0 + 20_000;
    const w = new TrafficWindow({ now: () => now });
    const why = 'igb does not report per-VF counters (IFLA_VF_STATS) and the VF has no netdev in the host namespace';
    w.ingest('h1', deltas([{ t: T0 + 5000, dt: 5000 }], [{ pf: 'eth0', missing: [{ why, vfs: [1] }], reset: [3], netdev: [0] }]), T0 + 5000);
    w.ingest('h1', deltas([{ t: T0 + 15_000, dt: 5000, pfs: [{ pf: 'eth0', vfs: [[1, 10, 0, 0, 0, 0, 0]] }] }]), T0 + 15_000);
    const h = w.host('h1')!;
    assert.deepEqual(w.points(h, vfKey('eth0', 1)).map((p) => p.t), [T0 + 15_000]);
    assert.deepEqual(w.points(h, vfKey('eth0', 3)).map((p) => p.t), [T0 + 15_000], 'a reset VF has no point where its delta was unknown');
    assert.equal(w.missing(h, 'eth0', 1), null, 'the last report could read it');
    w.ingest('h1', deltas([{ t: T0 + 16_000, dt: 1000 }], [{ pf: 'eth0', missing: [{ why, vfs: [1] }], netdev: [0] }]), T0 + 16_000);
    assert.equal(w.missing(h, 'eth0', 1), why);
    assert.equal(w.source(h, 'eth0', 0), 'netdev');
    assert.equal(w.source(h, 'eth0', 2), 'vf-stats');
  });

  it('forgets buckets older than the window and reuses their memory', () => {
    let now = T0;
    const w = new TrafficWindow({ windowS: 60, bucketS: 10, now: () => now });
    for (let i = 1; i <= 30; i++) {
      now = T0 + i * 10_000;
      w.ingest('h1', deltas([{ t: now, dt: 10_000, pfs: [{ pf: 'eth0', d: [i, 0, 0, 0, 0, 0] }] }]), now);
    }
    const h = w.host('h1')!;
    const points = w.points(h, 'eth0');
    assert.ok(points.length <= 7, `${points.length} buckets in a 60 s window`);
    assert.deepEqual(points.map((p) => Math.round(p.rates[0] * 10)), [24, 25, 26, 27, 28, 29, 30].slice(-points.length));
    assert.equal(h.bucketOf.length, w.slots);
    // Totals since the start are kept for /metrics' counters.
    assert.equal(h.series.get('eth0')!.totals[0], (30 * 31) / 2);
  });

  it('holds at most MAX_SERIES_PER_HOST series per host, and forgets a host whole', () => {
    const now = T0 + 5000;
    const w = new TrafficWindow({ now: () => now });
    const many = Array.from({ length: 4096 }, (_, i) => [i, 1, 0, 0, 0, 0, 0]);
    w.ingest('h1', deltas([{ t: now, dt: 5000, pfs: [{ pf: 'a', vfs: many }, { pf: 'b', vfs: many }] }]), now);
    const h = w.host('h1')!;
    assert.equal(h.series.size, MAX_SERIES_PER_HOST);
    assert.equal(h.dropped, 4096);
    w.forget('h1');
    assert.equal(w.host('h1'), undefined);
    assert.deepEqual([...w.hostNames()], []);
  });
});
