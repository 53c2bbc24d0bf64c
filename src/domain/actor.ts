/**
 * Who is asking, and what they may do. A tenant sees only its own networks
 * and allocations and gets NOT_FOUND (404), not FORBIDDEN, for anyone
 * else's, so it cannot even learn that they exist.
 *
 * Roles:
 * - `admin`, `operator`: staff; see and act on every tenant's objects.
 * - `tenant:<name>`: its own networks and allocations; never names a path on
 *   a host (network namespace) or a VM domain: those are the orchestrator's.
 * - `node:<host>`: the CNI plugin and device plugin on one host. Acts for the
 *   orchestrator there: allocates, attaches (netns, VM domain) and releases
 *   on that host only, for any tenant's network; reads networks. Nothing else.
 * - `agent:<host>`: the host's agent; only the /v1/agent/* protocol.
 */
import type { Allocation, Role } from './types.js';
import { SriovError } from '../host/errors.js';

export interface Actor {
  /** Token id, or `local` for the daemon's own agent. */
  id: string;
  role: Role;
}

export type HasRole = Pick<Actor, 'role'>;

export const isAdmin = (a: HasRole) => a.role === 'admin';
export const isStaff = (a: HasRole) => a.role === 'admin' || a.role === 'operator';
/** The tenant a `tenant:<name>` role acts for; null for other roles. */
export const tenantOf = (a: HasRole): string | null => (a.role.startsWith('tenant:') ? a.role.slice(7) : null);
export const agentHostOf = (a: HasRole): string | null => (a.role.startsWith('agent:') ? a.role.slice(6) : null);
/** The host a `node:<host>` role acts on; null for other roles. */
export const nodeHostOf = (a: HasRole): string | null => (a.role.startsWith('node:') ? a.role.slice(5) : null);

export function forbidden(actor: Actor, what: string): SriovError {
  return new SriovError('FORBIDDEN', `${actor.role} may not ${what}`, { object: actor.id });
}

export function requireAdmin(actor: Actor, what: string): void {
  if (!isAdmin(actor)) throw forbidden(actor, what);
}

export function requireStaff(actor: Actor, what: string): void {
  if (!isStaff(actor)) throw forbidden(actor, what);
}

/** Staff see every tenant's objects; a tenant only its own; agents and nodes none. */
export function canSeeTenant(actor: Actor, tenant: string): boolean {
  return isStaff(actor) || tenantOf(actor) === tenant;
}

export function notFound(kind: string, name: string): SriovError {
  return new SriovError('NOT_FOUND', `${kind} ${name} not found`, { object: name });
}

/**
 * Tenants act on their own objects; staff on any; agents never through these
 * paths. A node reads any tenant's network (the CNI plugin needs its
 * settings to attach it) and nothing else through here.
 */
export function requireTenantAccess(actor: Actor, tenant: string, kind: string, name: string): void {
  if (agentHostOf(actor)) throw forbidden(actor, `use ${kind}s`);
  if (nodeHostOf(actor) !== null) {
    if (kind === 'network') return;
    throw forbidden(actor, `use ${kind}s`);
  }
  if (!canSeeTenant(actor, tenant)) throw notFound(kind, name);
}

/** An allocation is its tenant's and staff's; a node's only when it is on the node's host. */
export function requireAllocationAccess(actor: Actor, a: Pick<Allocation, 'tenant' | 'host'>, id: string): void {
  const node = nodeHostOf(actor);
  if (node === null) return requireTenantAccess(actor, a.tenant, 'allocation', id);
  if (node !== a.host) throw notFound('allocation', id);
}

/**
 * May `actor` see what happened inside the namespaces and VMs of `host`
 * (an attach failure's reason reads `net1 already exists`)? Staff may, and
 * the node token of that host, which named the namespace.
 */
export function canSeeHostDetail(actor: Actor, host: string): boolean {
  return isStaff(actor) || nodeHostOf(actor) === host;
}

/**
 * May `actor` name a network namespace path or a VM domain? A path on a host
 * is the orchestrator's to name, never a tenant's: a tenant that could name
 * one could move its VF into the host's own namespace or another tenant's pod.
 * Throws FORBIDDEN saying who may. (A node is also held to its own host: see
 * pinnedHost.)
 */
export function requireAttachRight(actor: Actor): void {
  if (isStaff(actor) || nodeHostOf(actor) !== null) return;
  throw new SriovError(
    'FORBIDDEN',
    `${actor.role} may not name a network namespace or VM: only the orchestrator's node token (node:<host>), an operator or an admin may`,
    { object: actor.id, nothingChanged: true },
  );
}

/**
 * The host a node's allocation must land on: its own. Refuses a request that
 * pins another host. Null for other roles (the scheduler chooses).
 */
export function pinnedHost(actor: Actor, requested: string | undefined): string | null {
  const node = nodeHostOf(actor);
  if (node === null) return null;
  if (requested !== undefined && requested !== node) {
    throw new SriovError('FORBIDDEN', `${actor.role} may only allocate on its own host ${node}, not on ${requested}`, {
      object: requested,
      nothingChanged: true,
    });
  }
  return node;
}

/** What a tenant reads in place of a host-side failure reason; the detail is in the audit log. */
export function genericReason(a: Pick<Allocation, 'state' | 'attachment'>): string {
  const what = a.state === 'failed' ? (a.attachment ? 'attach failed on the host' : 'the VF could not be configured on the host') : 'the host reported a problem';
  return `${what}; an operator can see the details in the audit log`;
}

/** `a` as `actor` may see it: the host's own words only for those who may see the host (see canSeeHostDetail). */
export function allocationFor<T extends Pick<Allocation, 'host' | 'reason' | 'state' | 'attachment'>>(actor: Actor, a: T): T {
  if (a.reason === null || canSeeHostDetail(actor, a.host)) return a;
  return { ...a, reason: genericReason(a) };
}
