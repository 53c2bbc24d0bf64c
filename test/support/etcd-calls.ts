/**
 * What an etcd store's client asks of etcd, counted on the client: read
 * calls (ranges and read-only Txns), write Txns and their puts, and the
 * allocation records (and their bytes) etcd answers with. Counts what the
 * load of the machine does not change, for the system tests of the store's
 * reads.
 */
import type { KVClient } from 'etcd3';
import type { EtcdStore } from '../../src/store/etcd/store.js';

export interface EtcdCalls {
  /** Ranges and Txns that write nothing. */
  reads: number;
  /** Txns that put a key. */
  commits: number;
  puts: number;
  /** Allocation records answered, and their keys' and values' bytes. */
  records: number;
  bytes: number;
  reset(): void;
}

export function countEtcdCalls(store: EtcdStore): EtcdCalls {
  const prefix = store.keys.ranges.allocations;
  const counter: EtcdCalls = {
    reads: 0,
    commits: 0,
    puts: 0,
    records: 0,
    bytes: 0,
    reset() {
      Object.assign(counter, { reads: 0, commits: 0, puts: 0, records: 0, bytes: 0 });
    },
  };
  const tally = (kvs: Array<{ key: Buffer; value: Buffer }>) => {
    for (const kv of kvs) {
      if (!kv.key.toString().startsWith(prefix)) continue;
      counter.records++;
      counter.bytes += kv.key.length + kv.value.length;
    }
  };
  const kv = store.client.kv as KVClient;
  const range = kv.range.bind(kv);
  const txn = kv.txn.bind(kv);
  kv.range = async (...args: Parameters<KVClient['range']>) => {
    counter.reads++;
    const res = await range(...args);
    tally(res.kvs);
    return res;
  };
  kv.txn = async (...args: Parameters<KVClient['txn']>) => {
    const success = args[0].success ?? [];
    const puts = success.filter((op) => 'request_put' in op).length;
    if (puts > 0) {
      counter.commits++;
      counter.puts += puts;
    }
    if (!success.some((op) => 'request_put' in op || 'request_delete_range' in op)) counter.reads++;
    const res = await txn(...args);
    for (const r of res.responses) if (r.response_range) tally(r.response_range.kvs);
    return res;
  };
  return counter;
}
