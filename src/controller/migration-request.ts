/**
 * What a caller asks of the migration service (`sriovctl migrate`, `POST
 * /v1/migrations`, a drain), and what a drain plans. Types only: the service
 * is `migrations.ts`, the drain `drain.ts`.
 */
import type { Actor } from '../domain/actor.js';
import type { HypervisorKind, Migration, WorkloadKind } from '../domain/types.js';

export interface MigrationRequest {
  /** An allocation id, or a unique prefix of one. */
  allocation: string;
  /** The destination host, and optionally one of its PFs (netdev name); a container only moves to another PF of its own host. */
  to: { host: string; pf: string | null };
  /** Required for a VM; refused for a container. */
  hypervisor?: HypervisorKind;
  /** QMP only: the destination QEMU's `-incoming` URI (`tcp:<ip>:<port>` or `unix:<absolute path>`). */
  migrateUri?: string;
  /** Plan and check only: nothing is reserved or changed; the answer says what would happen. */
  dryRun?: boolean;
  /** Set by a drain: the drain's id, recorded on the migration. */
  drain?: string | null;
}

/** The migration service as a drain (and the API) uses it. */
export interface Migrations {
  /**
   * Plans and reserves the destination (refusing with the reason and the best
   * alternative, nothing changed, when nothing fits), then drives the
   * migration in the background. With `dryRun`, the planned migration
   * (`id` 'dry-run', `to` filled in) and nothing written.
   */
  start(actor: Actor, req: MigrationRequest): Promise<Migration>;
  get(actor: Actor, id: string): Promise<Migration>;
  /** Long-poll: the migration once it ended (completed, failed, aborted), or as it is after `waitMs`. */
  wait(actor: Actor, id: string, waitMs: number): Promise<Migration>;
  list(actor: Actor, filter?: { state?: Migration['state']; allocation?: string; drain?: string; host?: string }): Promise<Migration[]>;
  /** Rolls back a migration that has not switched yet; one that has is finished instead, and says so. */
  abort(actor: Actor, id: string): Promise<Migration>;
}

/** One allocation a drain moves, and where. */
export interface DrainMove {
  allocation: string;
  workload: { kind: WorkloadKind; name: string };
  from: { host: string; pf: string };
  /** Where it goes; null when nothing fits (then `refusal` says why and the drain does not start). */
  to: { host: string; pf: string } | null;
  hypervisor: HypervisorKind | null;
  refusal: string | null;
  /** The migration that moves it, once started. */
  migration: string | null;
}

export interface DrainPlan {
  /** `<host>` or `<host>/<pf>`. */
  id: string;
  host: string;
  /** The PFs drained (netdev names). */
  pfs: string[];
  dryRun: boolean;
  moves: DrainMove[];
}
