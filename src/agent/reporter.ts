/**
 * The agent's side of cheap heartbeats: every report carries the inventory
 * hash, and the inventory itself only when the hash differs from the last one
 * a controller accepted. A controller for which it is not the hash of the
 * host's stored record (another controller stored another inventory since,
 * or the record is from before hashes were stored) answers inventoryNeeded,
 * and the same report goes again, whole: nothing of it was applied.
 *
 * A controller taking many inventories at once (one on a store from before
 * inventory hashes were stored, which the whole fleet answers with its
 * inventory) refuses the others unread, 503 with
 * Retry-After (api/upload-gate.ts): the inventory goes again after a random
 * wait of 1-3 times that, so that a fleet's resends spread out instead of
 * coming back together.
 */
import type { AgentEvent, AllocationStatus, HypervisorTaskResult } from '../controller/desired-state.js';
import type { AgentReport, ReportExtras } from '../controller/hosts.js';
import { SriovError } from '../host/errors.js';
import { sleep } from '../host/wait.js';
import { inventoryHash } from '../host/inventory-hash.js';
import type { HostInventory } from '../host/model.js';

/** Tries of one inventory a busy controller refuses, before the agent's loop takes over (about 40 s of waits at 2 s). */
const INVENTORY_TRIES = 8;

export interface ReporterOptions {
  /** For tests: the wait between tries, and the random number in [0, 1) that spreads it. */
  sleep?: (ms: number) => Promise<unknown>;
  random?: () => number;
}

export class Reporter {
  /** The hash of the last inventory a controller accepted; null: send the next one whole. */
  private accepted: string | null = null;
  private readonly sleep: (ms: number) => Promise<unknown>;
  private readonly random: () => number;

  constructor(
    private readonly send: (report: AgentReport) => Promise<unknown>,
    opts: ReporterOptions = {},
  ) {
    this.sleep = opts.sleep ?? sleep;
    this.random = opts.random ?? Math.random;
  }

  async report(inventory: HostInventory, statuses: AllocationStatus[], events: AgentEvent[] = [], results: HypervisorTaskResult[] = [], extras: ReportExtras = {}): Promise<void> {
    const hash = inventoryHash(inventory);
    const outcomes = { inventoryHash: hash, statuses, events, results, ...extras };
    if (hash === this.accepted) {
      try {
        await this.send({ host: inventory.hostname, ...outcomes });
        return;
      } catch (err) {
        if (!isInventoryNeeded(err)) throw err;
      }
    }
    this.accepted = null;
    await this.sendWhole({ inventory, ...outcomes });
    this.accepted = hash;
  }

  /** The report with its inventory, sent again after a jittered wait while the controller asks for one (Retry-After). */
  private async sendWhole(report: AgentReport): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        await this.send(report);
        return;
      } catch (err) {
        const after = retryAfterS(err);
        if (after === null || tries >= INVENTORY_TRIES) throw err;
        await this.sleep(after * 1000 * (1 + 2 * this.random()));
      }
    }
  }
}

/** The wait a controller asked for with a refusal that changed nothing (503 UNAVAILABLE, data.retryAfterS); null for any other error. */
function retryAfterS(err: unknown): number | null {
  if (!(err instanceof SriovError) || err.code !== 'UNAVAILABLE') return null;
  const s = err.details.data?.retryAfterS;
  return typeof s === 'number' && s > 0 ? Math.min(s, 60) : null;
}

/** The controller's 409 asking for the inventory (HostService.receive). */
export function isInventoryNeeded(err: unknown): boolean {
  return err instanceof SriovError && err.code === 'CONFLICT' && err.details.data?.inventoryNeeded === true;
}
