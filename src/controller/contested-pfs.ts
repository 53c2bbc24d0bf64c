/**
 * PF identities (inventory-check.ts, pfIdentities) that more than one stored
 * host record holds: a NIC moved to another host while its old one was down,
 * and the old record still lists it. A controller that took the reports saw
 * which host claimed it last; one that starts on the store cannot tell, so
 * at start such a PF is owned by none of its claimants (HostService.seed):
 * their liveness reports are answered inventoryNeeded, the first whole
 * report that still has the PF takes it, and a host that is none of them is
 * refused it while one of them is live, as it would be by the owner.
 */
import type { HostRecord } from '../domain/types.js';
import { pfIdentities } from './inventory-check.js';

/** Identity → the hosts whose stored inventory holds it, for those held by two or more. */
export function contestedPfs(hosts: Pick<HostRecord, 'name' | 'inventory'>[]): Map<string, Set<string>> {
  const holders = new Map<string, Set<string>>();
  for (const h of hosts) {
    for (const identity of pfIdentities(h.inventory)) {
      const names = holders.get(identity) ?? new Set<string>();
      holders.set(identity, names.add(h.name));
    }
  }
  for (const [identity, names] of holders) if (names.size < 2) holders.delete(identity);
  return holders;
}
