/**
 * Who is asking, and what they may do. A tenant sees only its own networks
 * and allocations and gets NOT_FOUND (404), not FORBIDDEN, for anyone
 * else's, so it cannot even learn that they exist.
 */
import type { Role } from './types.js';
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

export function forbidden(actor: Actor, what: string): SriovError {
  return new SriovError('FORBIDDEN', `${actor.role} may not ${what}`, { object: actor.id });
}

export function requireAdmin(actor: Actor, what: string): void {
  if (!isAdmin(actor)) throw forbidden(actor, what);
}

export function requireStaff(actor: Actor, what: string): void {
  if (!isStaff(actor)) throw forbidden(actor, what);
}

/** Staff see every tenant's objects; a tenant only its own; agents none. */
export function canSeeTenant(actor: Actor, tenant: string): boolean {
  return isStaff(actor) || tenantOf(actor) === tenant;
}

export function notFound(kind: string, name: string): SriovError {
  return new SriovError('NOT_FOUND', `${kind} ${name} not found`, { object: name });
}

/** Tenants act on their own objects; staff on any; agents never through these paths. */
export function requireTenantAccess(actor: Actor, tenant: string, kind: string, name: string): void {
  if (agentHostOf(actor)) throw forbidden(actor, `use ${kind}s`);
  if (!canSeeTenant(actor, tenant)) throw notFound(kind, name);
}
