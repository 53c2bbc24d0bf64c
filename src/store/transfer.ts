/**
 * `sriovd store export|import`: a store's whole content as one JSON
 * document, read and written through the Store interface only, so it moves
 * any store to any other (a SQLite deployment onto etcd). The export reads
 * in one transaction (one snapshot); the import writes into an empty store
 * only, in dependency order, each record through the method that keeps its
 * invariants, and the audit log in sequence, each event keeping its number.
 */
import type { Allocation, AuditEvent, HostRecord, Migration, Network, Physnet, StoredPolicy, Tenant, TokenRecord } from '../domain/types.js';
import { invalid, SriovError } from '../host/errors.js';
import type { Store, StoreTx } from './store.js';

export const DUMP_FORMAT = 'vfleet-store';
export const DUMP_VERSION = 1;

/** An IP lease with its holder (the Store interface lists a network's addresses; holders come from attachments). */
export interface DumpLease {
  network: string;
  address: string;
  allocation: string;
}

export interface StoreDump {
  format: typeof DUMP_FORMAT;
  version: typeof DUMP_VERSION;
  /** The kind of store it came from, and when: for the operator. */
  source: Store['kind'];
  exportedAt: string;
  physnets: Physnet[];
  tenants: Tenant[];
  networks: Network[];
  hosts: HostRecord[];
  policies: StoredPolicy[];
  tokens: TokenRecord[];
  allocations: Allocation[];
  leases: DumpLease[];
  migrations: Migration[];
  /** The audit log, oldest first, numbered 1, 2, 3... with no gap. */
  events: AuditEvent[];
}

const KINDS = ['physnets', 'tenants', 'networks', 'hosts', 'policies', 'tokens', 'allocations', 'leases', 'migrations', 'events'] as const;
type Kind = (typeof KINDS)[number];
export type TransferCounts = Record<Kind, number>;

const PAGE = 500;
/**
 * Records per import transaction: few enough that one etcd Txn stays under
 * etcd's 128 operations (an allocation writes about 8 keys). A host is
 * alone: its inventory can be hundreds of KB, and an etcd request at most 1.5 MB.
 */
const BATCH: Partial<Record<Kind, number>> = { hosts: 1 };
const DEFAULT_BATCH = 8;

export const countsOf = (d: StoreDump): TransferCounts => Object.fromEntries(KINDS.map((k) => [k, d[k].length])) as TransferCounts;

/** Everything in `store`, at one snapshot. */
export async function exportStore(store: Store, now = new Date()): Promise<StoreDump> {
  return store.transaction(async (tx) => {
    const [physnets, tenants, networks, hosts, policies, tokens] = await Promise.all([
      tx.listPhysnets(), tx.listTenants(), tx.listNetworks(), tx.listHosts(), tx.listPolicies(), tx.listTokens(),
    ]);
    const allocations = await allAllocations(tx);
    return {
      format: DUMP_FORMAT,
      version: DUMP_VERSION,
      source: store.kind,
      exportedAt: now.toISOString(),
      physnets: byKey(physnets, (p) => p.name),
      tenants: byKey(tenants, (t) => t.name),
      networks: byKey(networks, (n) => n.name),
      hosts: byKey(hosts, (h) => h.name),
      policies: byKey(policies, (p) => p.host),
      tokens: byKey(tokens, (t) => t.id),
      allocations,
      leases: await leasesOf(tx, networks, allocations),
      migrations: byKey(await tx.listMigrations(), (m) => `${m.createdAt} ${m.id}`),
      events: await allEvents(tx),
    };
  });
}

/** Sorted, so two exports of the same content are the same text. */
const byKey = <T>(items: T[], key: (t: T) => string): T[] => [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

async function allAllocations(tx: StoreTx): Promise<Allocation[]> {
  const all: Allocation[] = [];
  for (let page = await tx.listAllocations({ limit: PAGE }); page.length; page = await tx.listAllocations({ limit: PAGE, after: page.at(-1)!.id })) {
    all.push(...page);
    if (page.length < PAGE) break;
  }
  return all;
}

async function allEvents(tx: StoreTx): Promise<AuditEvent[]> {
  const all: AuditEvent[] = [];
  for (let page = await tx.listEvents({ limit: PAGE }); page.length; page = await tx.listEvents({ afterSeq: page.at(-1)!.seq, limit: PAGE })) {
    all.push(...page);
    if (page.length < PAGE) break;
  }
  return all;
}

/** Each leased address with its holder: the allocation on that network whose attachment has the address. */
async function leasesOf(tx: StoreTx, networks: Network[], allocations: Allocation[]): Promise<DumpLease[]> {
  const holders = new Map<string, string>();
  for (const a of allocations) {
    if (a.attachment?.kind !== 'container' || a.state === 'released') continue;
    for (const cidr of a.attachment.ips) holders.set(`${a.network} ${cidr.split('/')[0]}`, a.id);
  }
  const leases: DumpLease[] = [];
  for (const n of byKey(networks, (x) => x.name)) {
    for (const address of await tx.listLeases(n.name)) {
      const allocation = holders.get(`${n.name} ${address}`);
      if (!allocation) {
        throw new SriovError('CONFLICT', `network ${n.name} leases ${address}, but no allocation on it is attached with that address: the store is inconsistent, nothing was exported`, { object: `${n.name} ${address}` });
      }
      leases.push({ network: n.name, address, allocation });
    }
  }
  return leases;
}

/** Checks a parsed export file's shape (the target store checks every record's invariants as it writes it). */
export function parseDump(value: unknown, file = 'the export'): StoreDump {
  const d = value as Partial<StoreDump> | null;
  if (typeof d !== 'object' || d === null || d.format !== DUMP_FORMAT) throw invalid(`${file} is not a vfleet store export (no "format": "${DUMP_FORMAT}")`, file);
  if (d.version !== DUMP_VERSION) throw invalid(`${file} is a version ${String(d.version)} export; this vfleet reads version ${DUMP_VERSION}`, file);
  for (const k of KINDS) {
    if (!Array.isArray(d[k])) throw invalid(`${file}: "${k}" must be an array`, file);
  }
  const dump = d as StoreDump;
  dump.events.forEach((e, i) => {
    if (e?.seq !== i + 1) throw invalid(`${file}: audit event ${i + 1} has seq ${String(e?.seq)}: the log must run 1, 2, 3... with no gap`, file);
  });
  return dump;
}

/** What `target` holds already, by kind (empty: nothing). */
async function contentOf(target: Store): Promise<string[]> {
  const tx = target.tx;
  const found: Array<[string, number]> = [
    ['physnets', (await tx.listPhysnets()).length],
    ['tenants', (await tx.listTenants()).length],
    ['networks', (await tx.listNetworks()).length],
    ['hosts', (await tx.listHosts()).length],
    ['policies', (await tx.listPolicies()).length],
    ['tokens', (await tx.listTokens()).length],
    ['allocations', (await tx.listAllocations({ limit: 1 })).length],
    ['migrations', (await tx.listMigrations()).length],
    ['audit events', (await tx.listEvents({ limit: 1 })).length],
  ];
  return found.filter(([, n]) => n > 0).map(([k]) => k);
}

/**
 * Writes `dump` into `target`, which must be empty. A record the target
 * refuses stops the import with that record named; what was written before
 * stays, so the message says to empty the target before trying again.
 */
export async function importStore(target: Store, dump: StoreDump): Promise<TransferCounts> {
  const present = await contentOf(target);
  if (present.length) {
    throw new SriovError('CONFLICT', `the target ${target.kind} store is not empty (it has ${present.join(', ')}); import only into a new store`, { nothingChanged: true });
  }
  const leases = groupLeases(dump.leases);
  const steps: { [K in Kind]: (tx: StoreTx, item: StoreDump[K][number]) => Promise<unknown> } = {
    physnets: (tx, p) => tx.putPhysnet(p),
    tenants: (tx, t) => tx.putTenant(t),
    networks: (tx, n) => tx.putNetwork(n),
    hosts: (tx, h) => tx.putHost(h),
    policies: (tx, p) => tx.putPolicy(p),
    tokens: (tx, t) => tx.putToken(t),
    allocations: (tx, a) => tx.insertAllocation(a),
    leases: async () => {},
    migrations: (tx, m) => tx.insertMigration(m),
    // In order, one transaction after the other, into an empty log: numbered 1, 2, 3... as the dump (parseDump checked it).
    events: (tx, e) => tx.appendEvent({ at: e.at, actor: e.actor, action: e.action, object: e.object, before: e.before, after: e.after }),
  };
  for (const kind of KINDS) {
    if (kind === 'leases') await writeAll(target, kind, leases, (tx, l) => tx.leaseAddresses(l.network, l.allocation, l.addresses));
    else await writeAll(target, kind, dump[kind] as never[], steps[kind] as (tx: StoreTx, item: never) => Promise<unknown>);
  }
  const last = await target.tx.getLastEventSeq();
  if (last !== dump.events.length) {
    throw new SriovError('CONFLICT', `the ${target.kind} store's audit log ends at ${last} after the import of ${dump.events.length} events: something else wrote to it meanwhile; empty it and import again`, {
      object: 'audit log',
    });
  }
  return countsOf(dump);
}

interface LeaseGroup {
  network: string;
  allocation: string;
  addresses: string[];
}

function groupLeases(leases: DumpLease[]): LeaseGroup[] {
  const groups = new Map<string, LeaseGroup>();
  for (const l of leases) {
    const key = `${l.network} ${l.allocation}`;
    const g = groups.get(key) ?? { network: l.network, allocation: l.allocation, addresses: [] };
    g.addresses.push(l.address);
    groups.set(key, g);
  }
  return [...groups.values()];
}

async function writeAll<T>(target: Store, kind: Kind, items: T[], write: (tx: StoreTx, item: T) => Promise<unknown>): Promise<void> {
  const size = BATCH[kind] ?? DEFAULT_BATCH;
  for (let i = 0; i < items.length; i += size) {
    const batch = items.slice(i, i + size);
    await target.transaction(async (tx) => {
      for (const [j, item] of batch.entries()) {
        try {
          await write(tx, item);
        } catch (err) {
          throw refused(target, kind, i + j, item, err);
        }
      }
    });
  }
}

function refused(target: Store, kind: Kind, index: number, item: unknown, err: unknown): SriovError {
  const name = nameOf(item) ?? `#${index + 1}`;
  const why = err instanceof SriovError ? err.toString() : err instanceof Error ? err.message : String(err);
  return new SriovError(err instanceof SriovError ? err.code : 'CONFLICT', `import stopped at ${kind} ${name}: ${why}; the ${target.kind} store now holds part of the import: empty it before importing again`, {
    object: `${kind} ${name}`,
    cause: err,
  });
}

function nameOf(item: unknown): string | undefined {
  const r = item as Record<string, unknown>;
  for (const k of ['id', 'name', 'host', 'seq', 'allocation']) if (typeof r?.[k] === 'string' || typeof r?.[k] === 'number') return String(r[k]);
  return undefined;
}
