/**
 * Draining a PF: staff mark it so that the scheduler places nothing new on it,
 * while the allocations it has keep their VFs. It is what moving workloads
 * off a PF (a later migration or drain) and changing its VF count with
 * nothing down build on; the kubelet device plugin offers its VFs Unhealthy.
 * The mark is the controller's (HostRecord.drainedPfs): a report keeps it.
 */
import { requireStaff, type Actor } from '../domain/actor.js';
import type { Allocation, HostRecord } from '../domain/types.js';
import { invalid, SriovError } from '../host/errors.js';
import { isIfName, isPciAddress, parseHostName, parsePciAddress, shown } from '../host/validate.js';
import type { StoreTx } from '../store/store.js';
import type { Context } from './context.js';

/** What a drain or undrain left: the PF, its flag, and what still holds a VF on it. */
export interface PfDrainState {
  host: string;
  /** PF netdev name (its PCI address when it is no longer in the host's inventory). */
  pf: string;
  pfPciAddress: string;
  drained: boolean;
  /** False when the PF already was as asked: nothing was written. */
  changed: boolean;
  /** Allocations holding a VF of the PF, oldest first: what a migration or drain must move off it. */
  holding: Allocation[];
}

/** How many names a NOT_FOUND lists before counting the rest. */
const NAMED = 8;

export class PfDrainService {
  constructor(private readonly ctx: Context) {}

  /** No new allocation on the PF until undrained; what it has stays. Idempotent. */
  drainPf(actor: Actor, host: string, pf: string): Promise<PfDrainState> {
    return this.set(actor, host, pf, true);
  }

  /** The PF takes new allocations again. Idempotent. */
  undrainPf(actor: Actor, host: string, pf: string): Promise<PfDrainState> {
    return this.set(actor, host, pf, false);
  }

  private async set(actor: Actor, host: string, pfRef: string, drained: boolean): Promise<PfDrainState> {
    requireStaff(actor, `${drained ? 'drain' : 'undrain'} PFs`);
    const name = parseHostName(host);
    const ref = parsePfRef(pfRef);
    // With the decisions held, no allocation is chosen between the store write and the scheduler's update.
    const state = await this.ctx.decisions.run(async () => {
      const result = await this.ctx.store.transaction(async (tx) => {
        const record = await tx.getHost(name);
        if (!record) throw await unknownHost(tx, name);
        const pf = findPf(record, ref, drained);
        const was = record.drainedPfs.includes(pf.pciAddress);
        let drainedPfs = record.drainedPfs;
        if (was !== drained) {
          drainedPfs = drained ? [...drainedPfs, pf.pciAddress] : drainedPfs.filter((p) => p !== pf.pciAddress);
          await tx.putHost({ ...record, drainedPfs, updatedAt: this.ctx.now() });
          await tx.appendEvent({
            at: this.ctx.now(),
            actor: `${actor.role}/${actor.id}`,
            action: drained ? 'pf.drain' : 'pf.undrain',
            // The PCI address: a netdev name may change across reboots, the PF's slot does not.
            object: `host/${name}/pf/${pf.pciAddress}`,
            before: { pf: pf.name, drained: was },
            after: { pf: pf.name, drained },
          });
        }
        const holding = (await tx.listAllocations({ host: name, holding: true })).filter((a) => a.pfPciAddress === pf.pciAddress);
        const state: PfDrainState = { host: name, pf: pf.name, pfPciAddress: pf.pciAddress, drained, changed: was !== drained, holding };
        return { state, drainedPfs };
      });
      if (result.state.changed) this.ctx.scheduler.setDrained(name, result.drainedPfs);
      return result.state;
    });
    // The device view carries the drained PFs, and agents may act on them: both wake.
    if (state.changed) this.ctx.feed.bump(name);
    return state;
  }
}

/** A netdev name (ens1f0) or a PCI address (0000:3b:00.0, or 3b:00.0 for domain 0000). */
type PfRef = { pciAddress: string } | { name: string };

function parsePfRef(value: unknown): PfRef {
  if (typeof value === 'string' && isPciAddress(value)) return { pciAddress: parsePciAddress(value) };
  if (isIfName(value)) return { name: value };
  throw invalid(`PF must be its netdev name like ens1f0 or its PCI address like 0000:3b:00.0, got ${shown(value)}`);
}

/**
 * The PF `ref` names on the host. A drained PF that left the inventory (a
 * NIC removed, a VF count change under way) can still be undrained by its
 * PCI address, or it would stay drained for good.
 */
function findPf(record: HostRecord, ref: PfRef, drain: boolean): { name: string; pciAddress: string } {
  const pfs = record.inventory.pfs;
  const found = 'name' in ref ? pfs.find((p) => p.name === ref.name) : pfs.find((p) => p.pciAddress === ref.pciAddress);
  if (found) return { name: found.name, pciAddress: found.pciAddress };
  if (!drain && 'pciAddress' in ref && record.drainedPfs.includes(ref.pciAddress)) return { name: ref.pciAddress, pciAddress: ref.pciAddress };
  const asked = 'name' in ref ? ref.name : ref.pciAddress;
  const known = named(pfs.map((p) => `${p.name} (${p.pciAddress})`));
  return notFoundWith(`PF ${asked} is not in host ${record.name}'s last report; its PFs: ${known || 'none'}`, `${record.name}/${asked}`);
}

async function unknownHost(tx: StoreTx, name: string): Promise<SriovError> {
  const known = named((await tx.listHosts()).map((h) => h.name));
  return new SriovError('NOT_FOUND', `host ${name} is not known; the hosts are: ${known || 'none (no agent has reported)'}`, { object: name, nothingChanged: true });
}

/** Up to NAMED names, then how many more. */
function named(names: string[]): string {
  const more = names.length > NAMED ? ` and ${names.length - NAMED} more` : '';
  return names.slice(0, NAMED).join(', ') + more;
}

function notFoundWith(message: string, object: string): never {
  throw new SriovError('NOT_FOUND', message, { object, nothingChanged: true });
}
