/**
 * The agent's side of cheap heartbeats: every report carries the inventory
 * hash, and the inventory itself only when the hash differs from the last one
 * a controller accepted. A controller that does not know the hash (it
 * restarted, or the agent failed over to another one) answers inventoryNeeded,
 * and the same report goes again, whole: nothing of it was applied.
 */
import type { AgentEvent, AllocationStatus, HypervisorTaskResult } from '../controller/desired-state.js';
import type { AgentReport } from '../controller/hosts.js';
import { SriovError } from '../host/errors.js';
import { inventoryHash } from '../host/inventory-hash.js';
import type { HostInventory } from '../host/model.js';

export class Reporter {
  /** The hash of the last inventory a controller accepted; null: send the next one whole. */
  private accepted: string | null = null;

  constructor(private readonly send: (report: AgentReport) => Promise<unknown>) {}

  async report(inventory: HostInventory, statuses: AllocationStatus[], events: AgentEvent[] = [], results: HypervisorTaskResult[] = []): Promise<void> {
    const hash = inventoryHash(inventory);
    const outcomes = { inventoryHash: hash, statuses, events, results };
    if (hash === this.accepted) {
      try {
        await this.send({ host: inventory.hostname, ...outcomes });
        return;
      } catch (err) {
        if (!isInventoryNeeded(err)) throw err;
      }
    }
    this.accepted = null;
    await this.send({ inventory, ...outcomes });
    this.accepted = hash;
  }
}

/** The controller's 409 asking for the inventory (HostService.receive). */
export function isInventoryNeeded(err: unknown): boolean {
  return err instanceof SriovError && err.code === 'CONFLICT' && err.details.data?.inventoryNeeded === true;
}
