/**
 * The etcd store's values: each record is its domain type as JSON, so the
 * watch (watch.ts) decodes a key's value with the same functions the store
 * reads it with. Claim keys hold an id (text) or a small JSON object, as
 * said beside each.
 */
import type { Allocation, AuditEvent, HostRecord, Migration, Network, Physnet, StoredPolicy, Tenant, TokenRecord } from '../../domain/types.js';

/** `alive/<name>`: a liveness-only heartbeat; it overrides the record's state and lastHeartbeat. */
export interface Alive {
  state: HostRecord['state'];
  at: string;
}

/** `segments/<physnet>/<vlan>`: its tenant, and the networks on it (the segment goes with the last). */
export interface Segment {
  tenant: string;
  networks: string[];
}

/** `macs/<mac>/<id>`: the holder's migration mark, so the MAC rule's peer test needs no other read. */
export interface MacHolder {
  migration: Allocation['migration'];
}

export const encode = (value: unknown): string => JSON.stringify(value);

function parse<T>(text: string): T {
  return JSON.parse(text) as T;
}

export const decodeTenant = parse<Tenant>;
export const decodePhysnet = parse<Physnet>;
export const decodeNetwork = parse<Network>;
export const decodeHost = parse<HostRecord>;
export const decodeAlive = parse<Alive>;
export const decodeAllocation = parse<Allocation>;
export const decodeMigration = parse<Migration>;
export const decodePolicy = parse<StoredPolicy>;
export const decodeToken = parse<TokenRecord>;
export const decodeSegment = parse<Segment>;
export const decodeMacHolder = parse<MacHolder>;

/** `before`/`after` of undefined have no JSON form: they are stored absent and read back as null. */
export function decodeEvent(text: string): AuditEvent {
  const e = parse<AuditEvent>(text);
  return { ...e, before: e.before ?? null, after: e.after ?? null };
}

/** The record with its liveness-only heartbeat (if any) merged in: `alive/` is written after `hosts/`, or not at all. */
export function mergeAlive(host: HostRecord, alive: Alive | null): HostRecord {
  return alive === null ? host : { ...host, state: alive.state, lastHeartbeat: alive.at };
}
