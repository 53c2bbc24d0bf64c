/**
 * The etcd store's keyspace, under one prefix (default `/vfleet/`). Records
 * are JSON values; the invariants SQLite keeps with unique indexes are
 * claim keys here, created in the same transaction as the record under a
 * compare that they do not exist yet (or hold this record's id):
 *
 *   tenants/<name>, physnets/<name>, networks/<name>       records (the catalogue)
 *   segments/<physnet>/<vlan>                               {tenant, networks}: one tenant per (physnet, VLAN)
 *   hosts/<name>                                            HostRecord (with its inventory)
 *   alive/<name>                                            {state, at}: a liveness-only heartbeat (touchHost);
 *                                                           putHost deletes it (the record's own state is newer)
 *   allocations/<id>                                        Allocation
 *   vfs/<host>/<pf PCI address>/<vfIndex>                   id of the allocation holding the VF
 *   macs/<mac>/<id>                                         {migration}: a holding allocation's MAC, lower case (two only for a migration's ends)
 *   pf-committed/<host>/<pf PCI address>                    the sum (Mbps, decimal text) of the guarantees of the
 *                                                           allocations holding a VF of the PF; absent at 0. Read and
 *                                                           written in the Txn of every write that starts or stops a
 *                                                           guarantee counting (insert, leaving or re-entering a
 *                                                           holding state), so two such writes on one PF conflict;
 *                                                           an insert is refused past its BandwidthCheck's capacity
 *                                                           (with bandwidth groups: a group tenant counts
 *                                                           max(share, its VFs' guarantees) there, group-charge.ts)
 *   tenant-groups                                           {<tenant>: {shareMbps, maxMbps}}: the tenants with a
 *                                                           bandwidth group; absent when none has one. ONE key, so a
 *                                                           batch reads it once: read by every write that starts or
 *                                                           stops a VF holding, written by a group change (putTenant),
 *                                                           so the two conflict
 *   pf-tenants/<host>/<pf PCI address>/<tenant>             {vfs, minTxRateMbps}: a group tenant's holdings on the PF
 *                                                           (what its charge there is computed from); absent at none
 *                                                           and for tenants without a group
 *   leases/<network>/<address>                              id of the allocation holding the address
 *   leased/<id>/<network>/<address>                         '' : the same lease by allocation (to release them)
 *   added/allocations/<field>/<value>                       the id of the last allocation inserted with that host,
 *                                                           tenant, network or workload name (written blind by the
 *                                                           insert, and by a claim's bind for its new name), or
 *                                                           that entered that state (`state`: by every write that
 *                                                           changes it): a filtered list's candidates come from
 *                                                           memory (allocation-index.ts), and its commit compares
 *                                                           this key.
 *                                                           (main's code wrote idx/allocations/<field>/<value>/<id>
 *                                                           per allocation instead; left in place, no longer read)
 *   policies/<host>                                         StoredPolicy (one per host)
 *   tokens/<id>, token-hashes/<sha256>                      TokenRecord, and its id by secret hash
 *   migrations/<id>, active-migrations/<allocation>         Migration; the one unfinished per allocation
 *   audit/in/<writer>/<n>                                   a committed batch's audit events, not numbered yet (one
 *                                                           event's JSON a line, codec.appendToInbox): written blind
 *                                                           by the batch (one key per batch, <writer> random per
 *                                                           store instance), so appends read no shared key and two
 *                                                           controllers do not conflict on the log
 *   audit/seq, audit/events/<seq, 16 digits>                the gap-free audit sequence and its events: one event,
 *                                                           or a JSON array of the consecutive events ending at
 *                                                           <seq> (codec.decodeEvents). Written by the sequencer
 *                                                           (audit-sequencer.ts), which moves audit/in/ here in
 *                                                           commit order under a compare of audit/seq (and by
 *                                                           main's code, which numbered its events in the write
 *                                                           transaction itself under the same compare)
 *   election/                                               the leader election (etcd3's Election)
 *
 * Names and ids are validated before they reach a key (no '/' in them);
 * an address or MAC is canonical text.
 */

export const DEFAULT_PREFIX = '/vfleet/';

/** Zero-padded so that etcd's byte order is the numeric order. */
export const seqKey = (seq: number): string => String(seq).padStart(16, '0');

export function keys(prefix = DEFAULT_PREFIX) {
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return {
    prefix: p,
    tenant: (name: string) => `${p}tenants/${name}`,
    physnet: (name: string) => `${p}physnets/${name}`,
    network: (name: string) => `${p}networks/${name}`,
    segment: (physnet: string, vlan: number) => `${p}segments/${physnet}/${vlan}`,
    host: (name: string) => `${p}hosts/${name}`,
    alive: (name: string) => `${p}alive/${name}`,
    allocation: (id: string) => `${p}allocations/${id}`,
    vf: (host: string, pf: string, vfIndex: number) => `${p}vfs/${host}/${pf}/${vfIndex}`,
    vfsOf: (host: string, pf: string) => `${p}vfs/${host}/${pf}/`,
    mac: (mac: string, id: string) => `${p}macs/${mac}/${id}`,
    macs: (mac: string) => `${p}macs/${mac}/`,
    pfCommitted: (host: string, pfPciAddress: string) => `${p}pf-committed/${host}/${pfPciAddress}`,
    tenantGroups: `${p}tenant-groups`,
    pfTenant: (host: string, pfPciAddress: string, tenant: string) => `${p}pf-tenants/${host}/${pfPciAddress}/${tenant}`,
    lease: (network: string, address: string) => `${p}leases/${network}/${address}`,
    leases: (network: string) => `${p}leases/${network}/`,
    leased: (id: string, network: string, address: string) => `${p}leased/${id}/${network}/${address}`,
    leasedBy: (id: string) => `${p}leased/${id}/`,
    added: (field: 'host' | 'tenant' | 'network' | 'workload' | 'state', value: string) => `${p}added/allocations/${field}/${value}`,
    policy: (host: string) => `${p}policies/${host}`,
    token: (id: string) => `${p}tokens/${id}`,
    tokenHash: (hash: string) => `${p}token-hashes/${hash}`,
    migration: (id: string) => `${p}migrations/${id}`,
    activeMigration: (allocation: string) => `${p}active-migrations/${allocation}`,
    auditSeq: `${p}audit/seq`,
    /** One writer's in-keys' prefix; `auditIn` one of them. */
    auditInbox: (writer: string) => `${p}audit/in/${writer}/`,
    auditIn: (writer: string, n: number) => `${p}audit/in/${writer}/${n}`,
    auditEvent: (seq: number) => `${p}audit/events/${seqKey(seq)}`,
    election: `${p}election/`,
    /** Prefixes of each kind, for ranges and for the watch. */
    ranges: {
      tenants: `${p}tenants/`,
      physnets: `${p}physnets/`,
      networks: `${p}networks/`,
      hosts: `${p}hosts/`,
      alive: `${p}alive/`,
      allocations: `${p}allocations/`,
      migrations: `${p}migrations/`,
      tokens: `${p}tokens/`,
      tokenHashes: `${p}token-hashes/`,
      segments: `${p}segments/`,
      policies: `${p}policies/`,
      auditEvents: `${p}audit/events/`,
      auditIn: `${p}audit/in/`,
    },
  };
}

export type Keys = ReturnType<typeof keys>;
