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

/** HostService's PF ownership as a start builds it. */
export interface StartClaims {
  /** PF identity → its owner. */
  owners: Map<string, string>;
  /** PF identity → its ready claimants, for one held by two or more. */
  contested: Map<string, Set<string>>;
  /** Whether a host already seen is ready (reporting when its record was last written). */
  ready(name: string): boolean;
}

/**
 * One stored record's PF identities, records coming in any order: an
 * identity goes to its last ready claimant, else to its last unreachable
 * one, and to none once a second ready host claims it.
 */
export function claimAtStart(claims: StartClaims, name: string, identities: readonly string[]): void {
  const ready = claims.ready(name);
  for (const identity of identities) {
    const claimants = claims.contested.get(identity);
    if (claimants) {
      if (ready) claimants.add(name);
      continue;
    }
    const owner = claims.owners.get(identity);
    if (owner === undefined || owner === name || !claims.ready(owner)) claims.owners.set(identity, name);
    else if (ready) {
      claims.owners.delete(identity);
      claims.contested.set(identity, new Set([owner, name]));
    }
  }
}
