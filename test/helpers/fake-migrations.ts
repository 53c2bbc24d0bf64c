/**
 * A small in-memory `Migrations` for the drain's tests, written while the
 * real service (controller/migrations.ts) was being built beside it. It keeps
 * the interface's rules that the drain relies on: a dry run writes nothing, a
 * second start of an allocation already migrating is a CONFLICT, `wait`
 * answers at the end or after `waitMs`, `list` filters. The test ends each
 * migration itself (`finish`); nothing on the hosts moves.
 */
import type { Actor } from '../../src/domain/actor.js';
import type { Migration, MigrationState } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import type { MigrationRequest, Migrations } from '../../src/controller/migration-request.js';
import type { Store } from '../../src/store/store.js';

const ENDED: readonly MigrationState[] = ['completed', 'failed', 'aborted'];

export class FakeMigrations implements Migrations {
  readonly byId = new Map<string, Migration>();
  /** Every start that was not a dry run, in order. */
  readonly started: MigrationRequest[] = [];
  dryRuns = 0;
  /** The most migrations running at once. */
  maxRunning = 0;
  /** Refuse a request (dry run or not) with this error, when it returns one. */
  refuse: (req: MigrationRequest) => SriovError | null = () => null;
  private readonly wakers = new Map<string, Array<() => void>>();
  private startWaiters: Array<() => void> = [];
  private waitWaiters = new Map<string, Array<() => void>>();
  private next = 0;

  constructor(private readonly store: Store) {}

  async start(_actor: Actor, req: MigrationRequest): Promise<Migration> {
    const a = await this.store.tx.getAllocation(req.allocation);
    if (!a) throw new SriovError('NOT_FOUND', `allocation ${req.allocation} is not known`, { object: req.allocation, nothingChanged: true });
    const active = [...this.byId.values()].find((m) => m.from.allocation === a.id && !ENDED.includes(m.state));
    if (active) throw new SriovError('CONFLICT', `allocation ${a.id} is already migrating (migration ${active.id})`, { object: a.id, nothingChanged: true });
    const refused = this.refuse(req);
    if (refused) throw refused;
    const at = new Date().toISOString();
    const end = { host: a.host, pf: a.pf, pfPciAddress: a.pfPciAddress, vfIndex: a.vfIndex, pciAddress: a.pciAddress, allocation: a.id };
    const m: Migration = {
      id: req.dryRun ? 'dry-run' : `mig-${++this.next}`,
      workload: a.workload,
      tenant: a.tenant,
      network: a.network,
      mac: a.mac,
      from: end,
      to: { ...end, host: req.to.host, pf: req.to.pf ?? '?', allocation: `${a.id}-dest` },
      requested: req.to,
      hypervisor: req.hypervisor ?? null,
      migrateUri: req.migrateUri ?? null,
      drain: req.drain ?? null,
      state: 'running',
      step: 'prepare',
      history: [],
      downtimeMs: null,
      reason: null,
      createdAt: at,
      updatedAt: at,
    };
    if (req.dryRun) {
      this.dryRuns++;
      return m;
    }
    this.byId.set(m.id, m);
    this.started.push(req);
    this.maxRunning = Math.max(this.maxRunning, this.running().length);
    for (const w of this.startWaiters.splice(0)) w();
    return m;
  }

  async get(_actor: Actor, id: string): Promise<Migration> {
    const m = this.byId.get(id);
    if (!m) throw new SriovError('NOT_FOUND', `migration ${id} is not known`, { object: id, nothingChanged: true });
    return { ...m };
  }

  async wait(actor: Actor, id: string, waitMs: number): Promise<Migration> {
    const m = await this.get(actor, id);
    if (ENDED.includes(m.state)) return m;
    for (const w of this.waitWaiters.get(id)?.splice(0) ?? []) w();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      const list = this.wakers.get(id) ?? [];
      list.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.wakers.set(id, list);
    });
    return this.get(actor, id);
  }

  async list(_actor: Actor, filter: { state?: MigrationState; allocation?: string; drain?: string; host?: string } = {}): Promise<Migration[]> {
    return [...this.byId.values()].filter(
      (m) =>
        (filter.state === undefined || m.state === filter.state) &&
        (filter.allocation === undefined || m.from.allocation === filter.allocation) &&
        (filter.drain === undefined || m.drain === filter.drain),
    );
  }

  async abort(actor: Actor, id: string): Promise<Migration> {
    this.finish(id, 'aborted', 'aborted by the test');
    return this.get(actor, id);
  }

  /** Ends migration `id` as `state`, waking its waiters. */
  finish(id: string, state: MigrationState = 'completed', reason: string | null = null): void {
    const m = this.byId.get(id)!;
    this.byId.set(id, { ...m, state, step: state === 'completed' ? 'done' : m.step, reason });
    for (const w of this.wakers.get(id)?.splice(0) ?? []) w();
  }

  running(): Migration[] {
    return [...this.byId.values()].filter((m) => !ENDED.includes(m.state));
  }

  /** Resolves when someone next waits on migration `id`. */
  waitedOn(id: string): Promise<void> {
    return new Promise((resolve) => this.waitWaiters.set(id, [...(this.waitWaiters.get(id) ?? []), resolve]));
  }

  /** Resolves at the next start that is not a dry run. */
  nextStart(): Promise<void> {
    return new Promise((resolve) => this.startWaiters.push(resolve));
  }
}
