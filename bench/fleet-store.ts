/**
 * The fleet the list and scrape benches stand on: a store (SQLite, or etcd) seeded with
 * the synthetic fleet of allocate.ts, and allocations made through the
 * service, every other one then marked attached (as agents would report).
 */
import type { ControlPlane } from '../src/controller/control-plane.js';
import type { Actor } from '../src/domain/actor.js';
import type { Network } from '../src/domain/types.js';
import type { Store } from '../src/store/store.js';
import { PHYSNETS, makeFleet, makeNetworks } from './allocate.js';

const ADMIN: Actor = { id: 'bench', role: 'admin' };

/** Host records a transaction: ~70 KB each, so that one stays inside an etcd Txn (1.4 MB). */
const HOSTS_A_TX = 16;

/** The physnets, the networks' tenants, the networks (allocate.ts' with 0 and 100 Mbit/s guarantees by default), and `hostCount` hosts. */
export async function seedFleet(store: Store, hostCount: number, networks: Network[] = makeNetworks([0, 100])): Promise<void> {
  await store.transaction(async (tx) => {
    for (const p of PHYSNETS) await tx.putPhysnet(p);
    for (const tenant of new Set(networks.map((n) => n.tenant))) await tx.putTenant({ id: `id-${tenant}`, name: tenant, createdAt: new Date().toISOString() });
    for (const n of networks) await tx.putNetwork(n);
  });
  const hosts = makeFleet(hostCount);
  for (let i = 0; i < hosts.length; i += HOSTS_A_TX) {
    await store.transaction(async (tx) => {
      for (const h of hosts.slice(i, i + HOSTS_A_TX)) await tx.putHost(h);
    });
  }
}

/** `count` VM allocations through the service on the two networks seedFleet makes by default, every other one then attached. */
export async function allocateHalfAttached(control: ControlPlane, store: Store, count: number): Promise<void> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const network = i % 2 ? 'acme-g0' : 'globex-g100';
    ids.push((await control.allocations.create(ADMIN, { network, workload: { kind: 'vm', name: `vm-${i}` } })).id);
  }
  const at = new Date().toISOString();
  await store.transaction(async (tx) => {
    for (const id of ids.filter((_, i) => i % 2 === 0)) await tx.updateAllocationState(id, 'attached', null, at);
  });
}
