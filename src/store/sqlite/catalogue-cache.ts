/**
 * The catalogue (tenants, physnets, networks) as the committed reads answer
 * it, kept from one commit that changes it to the next. Every allocation
 * reads its network, its segment's networks and the physnets before it
 * decides: read from SQLite each time, that was a tenth of an allocation's
 * CPU and a fifth of its garbage, whose collection pauses every request in
 * flight.
 *
 * Sound because one process writes the file (the daemon holds it): every
 * catalogue write goes through this store's queue, which drops the cache
 * as the batch that wrote it commits or rolls back, before anything else
 * can run. Until then the reader sees the old rows, as the cache does.
 */
import type { Network, Physnet, Tenant } from '../../domain/types.js';
import type { CommittedReads, NetworkFilter } from '../store.js';

/** Keys come from callers' names and filters: a bound, so that lookups of names that do not exist cannot grow it. */
const MAX_ENTRIES = 1024;

export class CatalogueCache {
  private readonly entries = new Map<string, unknown>();
  private written = false;
  /** Counts the drops: a read that began before one must not refill the cache after it. */
  private generation = 0;

  /** A catalogue write ran in the batch in flight. */
  wrote(): void {
    this.written = true;
  }

  /** The batch in flight has committed or rolled back. */
  settled(): void {
    if (!this.written) return;
    this.entries.clear();
    this.written = false;
    this.generation++;
  }

  /** `reads`, with the catalogue's answered from the cache. Callers share what it holds: it is frozen. */
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
    };
  }

  // Not async functions: a hit is one resolved promise, where an async function's frame was most of a hit's garbage.

  /** A hit: a fresh array each time (a caller may sort it), of shared records. */
  private listed<T>(key: string): Promise<T[]> | undefined {
    const hit = this.entries.get(key) as T[] | undefined;
    return hit && Promise.resolve(hit.slice());
  }

  /** `read` was called just now, on a miss: it ran (synchronously) before anything could drop the cache. */
  private keepList<T extends Tenant | Physnet | Network>(key: string, read: Promise<T[]>): Promise<T[]> {
    const generation = this.generation;
    return read.then((found) => {
      const rows = found.map(frozen);
      this.keep(key, rows, generation);
      return rows.slice();
    });
  }

  /** A hit: the promise kept with the record, as callers share the record anyway (a promise per hit was garbage). */
  private found<T>(key: string): Promise<T> | undefined {
    return this.entries.get(key) as Promise<T> | undefined;
  }

  /** Absent records are not kept: any name may be asked for. */
  private keepOne<T extends Tenant | Network>(key: string, read: Promise<T | null>): Promise<T | null> {
    const generation = this.generation;
    return read.then((found) => {
      if (found === null) return null;
      const record = frozen(found);
      this.keep(key, Promise.resolve(record), generation);
      return record;
    });
  }

  /** The read ran (synchronously, as it was called) before `generation`'s drop, if any: kept only if there was none since. */
  private keep(key: string, value: unknown, generation: number): void {
    if (generation !== this.generation) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(key, value);
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
