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

/** Records written before bandwidth groups read as having none. */
export const decodeTenant = (text: string): Tenant => normalTenant(parse<Tenant>(text));
export const decodePhysnet = (text: string): Physnet => normalPhysnet(parse<Physnet>(text));
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

/**
 * `audit/events/<seq>`: one event (as main wrote them, and a transaction
 * that appended one), or a JSON array of consecutive events ending at `seq`
 * (one record per batch, not one key per event: audit-sequencer.ts).
 */
export function decodeEvents(text: string): AuditEvent[] {
  if (!text.startsWith('[')) return [decodeEvent(text)];
  return parse<AuditEvent[]>(text).map((e) => ({ ...e, before: e.before ?? null, after: e.after ?? null }));
}

/**
 * `audit/in/<writer>/<n>`: a batch's events not numbered yet, one event's
 * JSON (as `encode` writes it, without `seq`) a line; JSON text never holds
 * a raw newline. `inbox` is what the batch appended before (undefined: none).
 */
export function appendToInbox(inbox: string | undefined, text: string): string {
  return inbox === undefined ? text : `${inbox}\n${text}`;
}

/**
 * An `audit/in/` value numbered from `first`: the `audit/events/` record of
 * its events (an array, keyed by `last`). Each event gets `seq` as its first
 * field, as `encode` writes a numbered event, without a parse.
 */
export function numberEvents(inbox: string, first: number): { record: string; last: number } {
  const lines = inbox.split('\n');
  return { record: `[${lines.map((line, i) => `{"seq":${first + i},${line.slice(1)}`).join(',')}]`, last: first + lines.length - 1 };
}

/** The record with its liveness-only heartbeat (if any) merged in: `alive/` is written after `hosts/`, or not at all. */
export function mergeAlive(host: HostRecord, alive: Alive | null): HostRecord {
  return alive === null ? host : { ...host, state: alive.state, lastHeartbeat: alive.at };
}

/** The record as SQLite would return it: known fields only, absent optionals as null. */
export function normalAllocation(a: Allocation): Allocation {
  return {
    id: a.id,
    workload: { kind: a.workload.kind, name: a.workload.name },
    network: a.network,
    tenant: a.tenant,
    host: a.host,
    pf: a.pf,
    pfPciAddress: a.pfPciAddress,
    vfIndex: a.vfIndex,
    pciAddress: a.pciAddress,
    mac: a.mac,
    vlan: a.vlan,
    minTxRateMbps: a.minTxRateMbps,
    group: a.group ?? null,
    state: a.state,
    reason: a.reason ?? null,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
    attachment: a.attachment ?? null,
    deviceClaim: a.deviceClaim?.resource === undefined ? null : { resource: a.deviceClaim.resource },
    migration: a.migration ? { id: a.migration.id, role: a.migration.role } : null,
  };
}

/** Known fields only, in SQLite's order, with no bandwidth group as null. */
export function normalTenant(t: Tenant): Required<Tenant> {
  return { id: t.id, name: t.name, pfMinTxRateMbps: t.pfMinTxRateMbps ?? null, pfMaxTxRateMbps: t.pfMaxTxRateMbps ?? null, createdAt: t.createdAt };
}

export function normalPhysnet(p: Physnet): Required<Physnet> {
  return { name: p.name, accountingOnly: p.accountingOnly, groupsAccountingOnly: p.groupsAccountingOnly ?? false, tenantVlans: p.tenantVlans };
}

export function normalNetwork(n: Network): Network {
  return { ...n, mtu: n.mtu ?? null, ipam: n.ipam ?? null };
}

/**
 * Drained PFs sorted and once each: the stored set reads the same however it
 * was built. No inventory hash is stored absent (as SQLite reads it back):
 * a record from before hashes were stored decodes the same way.
 */
export function normalHost(h: HostRecord): HostRecord {
  return {
    name: h.name,
    state: h.state,
    lastHeartbeat: h.lastHeartbeat,
    inventory: h.inventory,
    physnets: h.physnets,
    deviceTypes: h.deviceTypes,
    drainedPfs: [...new Set(h.drainedPfs)].sort(),
    ...(h.inventoryHash == null ? {} : { inventoryHash: h.inventoryHash }),
    updatedAt: h.updatedAt,
  };
}
