/**
 * Inventory uploads taken at once. A controller whose hosts' records carry no
 * inventory hash (a store from before HostRecord.inventoryHash; before it, any
 * fresh controller, and any the fleet failed over to) answers every agent's
 * next report inventoryNeeded, and the whole fleet resends its inventories
 * at once: 1,000 hosts x 100 KB of JSON, each read, parsed, validated and
 * written concurrently, which grew a fresh controller's heap by about 150 MB
 * that V8 then kept. The gate takes a few at a time; the others are refused
 * before their body is read, with 503 and a Retry-After, and the agents
 * (agent/reporter.ts) send again after a jittered wait, so the resends spread
 * out. 503 also moves an agent of several controllers on to the next one.
 */
import { SriovError } from '../host/errors.js';

/** Reports up to this size (liveness, outcomes) are never held back: they are the heartbeat. */
export const SMALL_REPORT_BYTES = 64 * 1024;
/** Inventories being taken at once; each costs about 10x its JSON in memory while it is parsed and written. */
export const DEFAULT_INVENTORY_UPLOADS = 8;
/** The wait the refusal asks for; the agent waits 1-3 times that, at random. */
export const UPLOAD_RETRY_AFTER_S = 2;

export class UploadGate {
  private inFlight = 0;

  constructor(private readonly max = DEFAULT_INVENTORY_UPLOADS) {
    if (!Number.isInteger(max) || max < 1) throw new SriovError('INVALID_ARGUMENT', `inventory uploads at once must be an integer of at least 1, got ${max}`);
  }

  /** Whether a report with this Content-Length may carry an inventory (no length: a chunked body, which may). */
  static large(contentLength: string | undefined): boolean {
    const n = contentLength === undefined ? NaN : Number(contentLength);
    return !(n <= SMALL_REPORT_BYTES);
  }

  /** Takes a place, or refuses (UNAVAILABLE, nothing read or changed); returns what gives the place back (once). */
  enter(host: string | undefined): () => void {
    if (this.inFlight >= this.max) {
      const who = host === undefined ? 'this report' : `the report of ${host}`;
      throw new SriovError('UNAVAILABLE', `this controller is taking ${this.max} inventories already; ${who} was not read: send it again in ${UPLOAD_RETRY_AFTER_S} s or more`, {
        object: host,
        nothingChanged: true,
        data: { retryAfterS: UPLOAD_RETRY_AFTER_S },
      });
    }
    this.inFlight++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.inFlight--;
    };
  }

  get taking(): number {
    return this.inFlight;
  }
}
