/**
 * The catalogue (tenants, physnets, networks) and the API tokens, as the
 * committed reads answer them, kept between the changes to them. Every
 * request authenticates its token, and every allocation reads its network,
 * its segment's networks and the physnets before it decides: on SQLite that
 * was a tenth of an allocation's CPU and a fifth of its garbage; on etcd, a
 * round trip each, five of a request's nine.
 *
 * SQLite (exact): one process writes the file, and every write to these
 * goes through the store's queue, which drops the cache as the batch that
 * wrote it commits or rolls back (`wrote`, `settled`), before anything else
 * can run.
 *
 * etcd (bounded): other controllers write too. The cache is dropped when
 * this controller commits such a write, and when the store's watch brings
 * one from another controller (`drop`); and it is used only while a watch
 * runs (`follow`). An entry is kept `ttlMs` at most, so a watch that stalls
 * leaves a controller at most that far behind: a token revoked, or a network
 * deleted, through another controller is refused here within `ttlMs`
 * (milliseconds, the watch's delay, while it runs). Writes never rely on
 * it: an allocation's commit checks its network in the same etcd Txn.
 */
import type { Network, Physnet, Tenant, TokenRecord } from '../domain/types.js';
import type { CommittedReads, NetworkFilter } from './store.js';

/** Keys come from callers' names and filters: a bound, so that lookups of names that do not exist cannot grow it. */
const MAX_ENTRIES = 1024;

export interface CatalogueCacheOptions {
  /** How long an entry is kept at most (default: until a change drops it). */
  ttlMs?: number;
  /** Whether it answers before `follow` (default true; etcd: only while the store's watch runs). */
  following?: boolean;
}

export class CatalogueCache {
  private readonly entries = new Map<string, { value: unknown; until: number }>();
  private written = false;
  /** Counts the drops: a read that began before one must not refill the cache after it. */
  private generation = 0;
  private readonly ttlMs: number;
  private following: boolean;

  constructor(options: CatalogueCacheOptions = {}) {
    this.ttlMs = options.ttlMs ?? Infinity;
    this.following = options.following ?? true;
  }

  /** A write to the catalogue or the tokens ran in the batch in flight. */
  wrote(): void {
    this.written = true;
  }

  /** The batch in flight has committed or rolled back. */
  settled(): void {
    if (!this.written) return;
    this.written = false;
    this.drop();
  }

  /** Something it holds may have changed: every entry goes, and reads in flight keep nothing. */
  drop(): void {
    this.entries.clear();
    this.generation++;
  }

  /** Whether it answers at all (etcd: while a watch tells it of other controllers' changes). */
  follow(on: boolean): void {
    this.following = on;
    this.drop();
  }

  /** `reads`, with the catalogue's and the tokens' answered from the cache. Callers share what it holds: it is frozen. */
  over(reads: CommittedReads): CommittedReads {
    // A hit builds its key and nothing else: the read (and a closure for it) only on a miss.
    return {
      ...reads,
      listTenants: () => this.listed<Tenant>('t') ?? this.keepList('t', reads.listTenants()),
      getTenant: (name) => {
        const key = `t=${name}`;
        return this.found<Tenant>(key) ?? this.keepOne(key, reads.getTenant(name));
      },
      listPhysnets: () => this.listed<Physnet>('p') ?? this.keepList('p', reads.listPhysnets()),
      listNetworks: (f: NetworkFilter = {}) => {
        const key = `n${opt(f.tenant)}${opt(f.physnet)}${opt(f.vlan)}`;
        return this.listed<Network>(key) ?? this.keepList(key, reads.listNetworks(f));
      },
      getNetwork: (name) => {
        const key = `n=${name}`;
        return this.found<Network>(key) ?? this.keepOne(key, reads.getNetwork(name));
      },
      findTokenByHash: (hash) => {
        const key = `k=${hash}`;
        return this.found<TokenRecord>(key) ?? this.keepOne(key, reads.findTokenByHash(hash));
      },
    };
  }

  // Not async functions: a hit is one resolved promise, where an async function's frame was most of a hit's garbage.

  /** A hit: a fresh array each time (a caller may sort it), of shared records. */
  private listed<T>(key: string): Promise<T[]> | undefined {
    const hit = this.hit(key) as T[] | undefined;
    return hit && Promise.resolve(hit.slice());
  }

  /** `read` was called just now, on a miss: it ran (synchronously) before anything could drop the cache. */
  private keepList<T extends Tenant | Physnet | Network>(key: string, read: Promise<T[]>): Promise<T[]> {
    const [generation, asOf] = [this.generation, this.ttlMs === Infinity ? 0 : Date.now()];
    return read.then((found) => {
      const rows = found.map(frozen);
      this.keep(key, rows, generation, asOf);
      return rows.slice();
    });
  }

  /** A hit: the promise kept with the record, as callers share the record anyway (a promise per hit was garbage). */
  private found<T>(key: string): Promise<T> | undefined {
    return this.hit(key) as Promise<T> | undefined;
  }

  /** Absent records are not kept: any name may be asked for. */
  private keepOne<T extends Tenant | Network | TokenRecord>(key: string, read: Promise<T | null>): Promise<T | null> {
    const [generation, asOf] = [this.generation, this.ttlMs === Infinity ? 0 : Date.now()];
    return read.then((found) => {
      if (found === null) return null;
      const record = frozen(found);
      this.keep(key, Promise.resolve(record), generation, asOf);
      return record;
    });
  }

  private hit(key: string): unknown {
    if (!this.following) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until !== Infinity && entry.until <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /**
   * The read ran (synchronously, as it was called) before `generation`'s drop, if any: kept only if there was none since;
   * and for `ttlMs` from when it began (`asOf`), as it may show nothing newer.
   */
  private keep(key: string, value: unknown, generation: number, asOf: number): void {
    if (generation !== this.generation || !this.following) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, { value, until: asOf + this.ttlMs });
  }
}

const opt = (v: string | number | undefined) => (v === undefined ? '\u0000' : `\u0000=${v}`);

/** Frozen to its leaves (a network's IPAM, a physnet's VLAN ranges): a caller that writes into one throws. */
function frozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}
