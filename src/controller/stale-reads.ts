/**
 * The API's reads: from the store while it answers, from memory (the read
 * mirror) while it does not. A read that finds the store unreachable marks
 * it so (store-health.ts), and the reads after it go to memory at once,
 * until the probe hears the store again; the API then marks its answers as
 * possibly stale. A read that memory cannot answer fails UNAVAILABLE, as it
 * would have from the store.
 */
import { MIRRORED_READS, type StoreReads } from './read-mirror.js';
import type { StoreHealth } from './store-health.js';

type AnyRead = (...args: unknown[]) => Promise<unknown>;

export function staleReads(store: StoreReads, memory: StoreReads, health: StoreHealth): StoreReads {
  const reads: Record<string, AnyRead> = {};
  for (const name of MIRRORED_READS) {
    const fromStore = store[name] as unknown as AnyRead;
    const fromMemory = memory[name] as unknown as AnyRead;
    reads[name] = async (...args) => {
      if (health.unreachableSince !== null) return fromMemory.apply(memory, args);
      try {
        return await fromStore.apply(store, args);
      } catch (err) {
        if (!health.failed(err)) throw err;
        return fromMemory.apply(memory, args);
      }
    };
  }
  return reads as unknown as StoreReads;
}
