/**
 * The etcd side of the scale bench: a cluster of N members on loopback that
 * the bench starts itself (test/support/etcd.ts, as bench/store-etcd.ts),
 * and what its members cost, read from each member's own process and
 * /metrics endpoint rather than from the controllers' side:
 *   - CPU (user + system) and RSS of the member processes;
 *   - what they write: WAL bytes (etcd_disk_wal_write_bytes_total, each
 *     member writes its own copy), puts applied (etcd_mvcc_put_total, also
 *     per member), the bytes the clients sent them
 *     (etcd_network_client_grpc_received_bytes_total) and the size of the
 *     bbolt file (etcd_debugging_mvcc_db_total_size_in_bytes);
 *   - what they were asked: gRPC calls by method (grpc_server_started_total,
 *     summed over the members, as a client may ask any member) and the bytes
 *     they answered (etcd_network_client_grpc_sent_bytes_total): what the
 *     controllers read.
 */
import { type EtcdCluster, startEtcd } from '../test/support/etcd.js';
import { cpuMsOf, rssOf } from './scale-procs.js';

export type { EtcdCluster };

/** Counters summed over the members (a member that does not answer counts 0). */
export interface EtcdCounters {
  members: number;
  walBytes: number;
  puts: number;
  clientBytes: number;
  /** Bytes the members answered the clients with: reads and watch events. */
  sentBytes: number;
  dbBytes: number;
  /** gRPC calls started, by method (Range, Txn, Put, LeaseKeepAlive, ...). */
  calls: Record<string, number>;
  cpuMs: number;
  rss: number;
}

const METRICS = {
  walBytes: 'etcd_disk_wal_write_bytes_total',
  puts: 'etcd_mvcc_put_total',
  clientBytes: 'etcd_network_client_grpc_received_bytes_total',
  sentBytes: 'etcd_network_client_grpc_sent_bytes_total',
  dbBytes: 'etcd_debugging_mvcc_db_total_size_in_bytes',
} as const;

/** One sample line of the Prometheus text format (no labels: these four have none); NaN when absent. */
export function metric(text: string, name: string): number {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

/** grpc_server_started_total by its grpc_method label. */
function callsByMethod(text: string, into: Record<string, number>): void {
  for (const m of text.matchAll(/^grpc_server_started_total\{[^}]*grpc_method="(\w+)"[^}]*\} (\S+)$/gm)) into[m[1]!] = (into[m[1]!] ?? 0) + Number(m[2]);
}

/** Starts `members` etcd members on loopback for the bench; their data in tmpfs when it has room. */
export async function startBenchEtcd(members: number): Promise<EtcdCluster> {
  const cluster = await startEtcd(members);
  console.log(`etcd: ${members} member(s) on loopback, ${cluster.storeUrl}`);
  return cluster;
}

export async function etcdCounters(cluster: EtcdCluster): Promise<EtcdCounters> {
  const out: EtcdCounters = { members: 0, walBytes: 0, puts: 0, clientBytes: 0, sentBytes: 0, dbBytes: 0, calls: {}, cpuMs: 0, rss: 0 };
  for (const m of cluster.members) {
    const pid = m.proc?.pid;
    if (pid === undefined) continue;
    const text = await fetch(`${m.clientUrl}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text()).catch(() => '');
    out.members++;
    for (const [field, name] of Object.entries(METRICS) as Array<[keyof typeof METRICS, string]>) out[field] += metric(text, name) || 0;
    callsByMethod(text, out.calls);
    out.cpuMs += await cpuMsOf(pid);
    out.rss += (await rssOf(pid)).rss;
  }
  return out;
}

/** `after - before`, field by field; `members` and `rss` are the later sample's, not differences. */
export function since(before: EtcdCounters, after: EtcdCounters): EtcdCounters {
  return {
    members: after.members,
    walBytes: after.walBytes - before.walBytes,
    puts: after.puts - before.puts,
    clientBytes: after.clientBytes - before.clientBytes,
    sentBytes: after.sentBytes - before.sentBytes,
    calls: Object.fromEntries(Object.entries(after.calls).map(([k, n]) => [k, n - (before.calls[k] ?? 0)]).filter(([, n]) => (n as number) > 0)),
    dbBytes: after.dbBytes - before.dbBytes,
    cpuMs: after.cpuMs - before.cpuMs,
    rss: after.rss,
  };
}
