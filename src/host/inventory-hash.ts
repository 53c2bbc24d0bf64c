/**
 * The inventory hash of the heartbeat protocol: sha256 (hex) of the
 * inventory's JSON. An agent sends it with every report and the inventory
 * itself only when the hash changed, so an idle host's heartbeat carries, and
 * writes, no inventory. The hash is the agent's word for "the inventory I sent
 * last": the controller compares it, it never needs to recompute it.
 */
import { createHash } from 'node:crypto';
import type { HostInventory } from './model.js';

/** sha256 hex: what the report schema accepts. */
export const INVENTORY_HASH_PATTERN = '^[0-9a-f]{64}$';

/** Per inventory object: an agent reports the same object every heartbeat until its host changes. */
const cache = new WeakMap<HostInventory, string>();

export function inventoryHash(inventory: HostInventory): string {
  let hash = cache.get(inventory);
  if (hash === undefined) {
    hash = createHash('sha256').update(JSON.stringify(inventory)).digest('hex');
    cache.set(inventory, hash);
  }
  return hash;
}
