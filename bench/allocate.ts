/**
 * Allocation throughput and latency on a large synthetic fleet: 1,000 hosts ×
 * 4 PFs × 64 VFs (2 NUMA nodes, ice and mlx5_core, 100G links), requests with
 * guarantees, NUMA constraints and redundancy groups. One timed operation is
 * choose + MAC + reserve: the scheduler alone (allocate-service.ts measures
 * the whole path with the store).
 *
 * A brute-force scheduler that scans every VF of every host per request runs
 * on the first requests as a baseline; both must make the same choices.
 *
 * Run: node dist/bench/allocate.js
 */
import { performance } from 'node:perf_hooks';
import { MacPool } from '../src/domain/mac-pool.js';
import type { Allocation, HostRecord, Network, Physnet } from '../src/domain/types.js';
import { SriovError } from '../src/host/errors.js';
import { Scheduler, type Placement, type PlacementPolicy, type PlacementRequest } from '../src/scheduler/index.js';
import { percentile } from './stats.js';
import { makeAllocation, makeHost, makeNetwork } from '../test/helpers/inventory.js';
import { NaiveScheduler } from '../test/helpers/naive-scheduler.js';

export interface BenchAllocateOptions {
  hosts?: number;
  requests?: number;
  baselineRequests?: number;
  print?: (line: string) => void;
}

export interface AllocateRun {
  scenario: string;
  policy: PlacementPolicy;
  allocations: number;
  refused: number;
  perSecond: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export interface BenchAllocateResult {
  runs: AllocateRun[];
  baseline: { requests: number; naiveMeanUs: number; indexedMeanUs: number; speedup: number; identical: boolean };
}

export const PHYSNETS: Physnet[] = [{ name: 'datacentre', accountingOnly: false, tenantVlans: [] }];

/** Guarantee mixes: one that VF counts bound, one that bandwidth bounds (so some requests are refused). */
const SCENARIOS = [
  { scenario: 'vf-bound', guaranteesMbps: [0, 100, 250, 500, 1000, 2000] },
  { scenario: 'bandwidth-bound', guaranteesMbps: [0, 1000, 2000, 4000, 8000, 10000] },
];

export async function benchAllocate(opts: BenchAllocateOptions = {}): Promise<BenchAllocateResult> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const hosts = makeFleet(opts.hosts ?? 1000);
  print(`fleet: ${hosts.length} hosts x 4 PFs x 64 VFs = ${hosts.length * 256} VFs (ice/mlx5_core, 100G, 2 NUMA nodes)`);
  print('requests: 30% NUMA required, 20% NUMA preferred, 10% in redundancy pairs');
  const runs: AllocateRun[] = [];
  for (const { scenario, guaranteesMbps } of SCENARIOS) {
    const networks = makeNetworks(guaranteesMbps);
    const requests = makeRequests(opts.requests ?? 100_000, networks);
    for (const policy of ['pack', 'spread'] as const) {
      const run = { scenario, ...timeAllocations(hosts, requests, policy) };
      runs.push(run);
      print(
        `${scenario} ${policy} (guarantees ${guaranteesMbps.join('/')} Mbps): ${run.allocations} allocated, ${run.refused} refused: ` +
          `${Math.round(run.perSecond)} allocations/s; p50 ${run.p50Us.toFixed(1)} us, p99 ${run.p99Us.toFixed(1)} us, max ${run.maxUs.toFixed(0)} us`,
      );
    }
  }
  const firstRequests = makeRequests(opts.baselineRequests ?? 2000, makeNetworks(SCENARIOS[0]!.guaranteesMbps));
  const baseline = compareWithNaive(hosts, firstRequests);
  print(
    `baseline (scan every VF): ${baseline.requests} requests, mean ${baseline.naiveMeanUs.toFixed(0)} us vs ${baseline.indexedMeanUs.toFixed(1)} us indexed: ` +
      `${Math.round(baseline.speedup)}x faster; same choices: ${baseline.identical ? 'yes' : 'NO'}`,
  );
  return { runs, baseline };
}

function timeAllocations(hosts: HostRecord[], requests: PlacementRequest[], policy: PlacementPolicy): Omit<AllocateRun, 'scenario'> {
  const scheduler = new Scheduler({ policy });
  scheduler.load(hosts, [], PHYSNETS);
  const macs = new MacPool();
  const latencies = new Float64Array(requests.length);
  let refused = 0;
  const started = performance.now();
  for (let i = 0; i < requests.length; i++) {
    const t0 = performance.now();
    const req = requests[i]!;
    const placement = chooseOrNull(scheduler, req);
    if (placement) {
      const a = makeAllocation(placement, req.network, req.workload, { group: req.group ?? null, mac: macs.next() });
      scheduler.reserve(a);
      macs.markUsed(a.mac);
    } else refused++;
    latencies[i] = performance.now() - t0;
  }
  const elapsedMs = performance.now() - started;
  latencies.sort();
  return {
    policy,
    allocations: requests.length - refused,
    refused,
    perSecond: (requests.length / elapsedMs) * 1000,
    p50Us: percentile(latencies, 50) * 1000,
    p99Us: percentile(latencies, 99) * 1000,
    maxUs: latencies[latencies.length - 1]! * 1000,
  };
}

/** The same requests through the indexed and the brute-force scheduler, choose + reserve only. */
function compareWithNaive(hosts: HostRecord[], requests: PlacementRequest[]): BenchAllocateResult['baseline'] {
  const indexed = new Scheduler();
  indexed.load(hosts, [], PHYSNETS);
  const naive = new NaiveScheduler(hosts, PHYSNETS);
  const fast = timeChoices(requests, (r) => chooseOrNull(indexed, r), (a) => indexed.reserve(a));
  const slow = timeChoices(requests, (r) => naive.choose(r), (a) => naive.reserve(a));
  const identical = fast.choices.every((c, i) => c === slow.choices[i]);
  return {
    requests: requests.length,
    naiveMeanUs: slow.meanUs,
    indexedMeanUs: fast.meanUs,
    speedup: slow.meanUs / fast.meanUs,
    identical,
  };
}

function timeChoices(
  requests: PlacementRequest[],
  choose: (r: PlacementRequest) => Placement | null,
  reserve: (a: Allocation) => void,
): { meanUs: number; choices: string[] } {
  const choices: string[] = [];
  const started = performance.now();
  for (const req of requests) {
    const p = choose(req);
    choices.push(p ? `${p.host}/${p.pf}/${p.vfIndex}` : 'refused');
    if (p) reserve(makeAllocation(p, req.network, req.workload, { group: req.group ?? null }));
  }
  return { meanUs: ((performance.now() - started) / requests.length) * 1000, choices };
}

function chooseOrNull(scheduler: Scheduler, req: PlacementRequest): Placement | null {
  try {
    return scheduler.choose(req);
  } catch (e) {
    if (e instanceof SriovError && e.code === 'NO_CAPACITY') return null;
    throw e;
  }
}

export function makeFleet(count: number): HostRecord[] {
  return Array.from({ length: count }, (_, h) =>
    makeHost({
      name: `host-${String(h).padStart(4, '0')}`,
      pfs: 4,
      vfs: 64,
      numaNodes: 2,
      driver: h % 2 ? 'mlx5_core' : 'ice',
      linkSpeedMbps: 100_000,
    }),
  );
}

/** One network per (tenant, guarantee), each on its own VLAN. */
export function makeNetworks(guaranteesMbps: number[]): Network[] {
  return ['acme', 'globex', 'initech', 'umbrella'].flatMap((tenant, t) =>
    guaranteesMbps.map((minTxRateMbps, g) =>
      makeNetwork({ name: `${tenant}-g${minTxRateMbps}`, tenant, vlan: 100 + t * 10 + g, minTxRateMbps }),
    ),
  );
}

export function makeRequests(count: number, networks: Network[]): PlacementRequest[] {
  const rand = mulberry32(20240101);
  const pick = (n: number) => Math.floor(rand() * n);
  return Array.from({ length: count }, (_, i) => {
    const pair = i >> 1;
    const numa = rand();
    return {
      network: networks[pick(networks.length)]!,
      workload: { kind: 'container', name: `vnf-${pair}` },
      numaNode: numa < 0.5 ? pick(2) : undefined,
      numaPolicy: numa < 0.3 ? 'required' : 'preferred',
      group: pair % 10 === 0 ? 'ha' : null,
      groupAcrossHosts: pair % 20 === 0,
    };
  });
}

/** Small seeded PRNG, so every run sees the same requests. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}


if (import.meta.url === `file://${process.argv[1]}`) await benchAllocate();
