/**
 * Waiting for an allocation to leave a state (`GET /v1/allocations/:id?wait=S&while=...`):
 * the caller (the CNI plugin) is woken the moment the controller applies the
 * agent's status report, instead of polling. Waiters live in memory, per
 * allocation id; a wake only says "read it again", the store stays the truth.
 */
import { invalid } from '../host/errors.js';
import type { Allocation, AllocationState } from '../domain/types.js';

export const ALLOCATION_STATES: readonly AllocationState[] = ['pending', 'configured', 'attached', 'releasing', 'released', 'failed'];
export const MAX_WAIT_S = 60;

export interface WaitQuery {
  wait?: string;
  while?: string;
}

/** A validated wait: how long, and which states to wait through (null: whatever state it has when asked). */
export interface WaitSpec {
  waitMs: number;
  states: AllocationState[] | null;
}

/** `wait` in whole seconds 1-60 and `while` as a comma list of known states; null without `wait`. */
export function parseWaitQuery(q: WaitQuery): WaitSpec | null {
  if (q.wait === undefined) {
    if (q.while !== undefined) throw invalid('query parameter while needs wait=S (whole seconds 1-60) beside it');
    return null;
  }
  if (!/^[0-9]{1,2}$/.test(q.wait) || Number(q.wait) < 1 || Number(q.wait) > MAX_WAIT_S) {
    throw invalid(`query parameter wait must be whole seconds 1-${MAX_WAIT_S}, got ${JSON.stringify(q.wait.slice(0, 20))}`);
  }
  return { waitMs: Number(q.wait) * 1000, states: q.while === undefined ? null : parseStates(q.while) };
}

function parseStates(list: string): AllocationState[] {
  const states = list.split(',');
  for (const s of states) {
    if (!ALLOCATION_STATES.includes(s as AllocationState)) {
      throw invalid(`query parameter while names an unknown allocation state ${JSON.stringify(s.slice(0, 20))}; states are ${ALLOCATION_STATES.join(', ')}`);
    }
  }
  return states as AllocationState[];
}

export class AllocationWaits {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** Called whenever allocation `id` changed in the store (status applied, release started, failure cleared). */
  wake(id: string): void {
    const waiting = this.waiters.get(id);
    this.waiters.delete(id);
    for (const done of waiting ?? []) done();
  }

  /** Wakes every waiter (shutdown): each answers with what it reads then. */
  wakeAll(): void {
    for (const id of [...this.waiters.keys()]) this.wake(id);
  }

  /**
   * Re-reads the allocation (through `read`, which also checks the caller's
   * right to see it) until its state is not in `states` or `timeoutMs` has
   * passed, and answers with the last read. The waiter is armed before each
   * read, so a change between the read and the wait cannot be missed.
   */
  async waitWhile(read: () => Promise<Allocation>, spec: WaitSpec): Promise<Allocation> {
    let a = await read();
    const states = spec.states ?? [a.state];
    const deadline = Date.now() + spec.waitMs;
    while (states.includes(a.state)) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      const woken = this.arm(a.id, left);
      try {
        a = await read();
        if (!states.includes(a.state)) break;
        await woken.promise;
      } finally {
        woken.cancel();
      }
      a = await read();
    }
    return a;
  }

  /**
   * The same for any object under key `id` (a migration: `migration/<id>`):
   * re-reads until `ended` says so or `timeoutMs` has passed.
   */
  async waitUntil<T>(id: string, read: () => Promise<T>, ended: (t: T) => boolean, timeoutMs: number): Promise<T> {
    let t = await read();
    const deadline = Date.now() + timeoutMs;
    while (!ended(t) && deadline > Date.now()) {
      const woken = this.arm(id, deadline - Date.now());
      try {
        t = await read();
        if (ended(t)) break;
        await woken.promise;
      } finally {
        woken.cancel();
      }
      t = await read();
    }
    return t;
  }

  private arm(id: string, ms: number): { promise: Promise<void>; cancel: () => void } {
    let done!: () => void;
    const promise = new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), ms);
      done = () => {
        clearTimeout(timer);
        this.waiters.get(id)?.delete(done);
        if (this.waiters.get(id)?.size === 0) this.waiters.delete(id);
        resolve();
      };
    });
    const set = this.waiters.get(id) ?? new Set();
    set.add(done);
    this.waiters.set(id, set);
    return { promise, cancel: done };
  }
}
