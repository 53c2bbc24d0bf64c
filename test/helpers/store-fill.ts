/**
 * A store with one of everything a deployment holds, written through the
 * Store interface: for export/import between engines. The content covers
 * what is easy to lose in a move: a liveness-only heartbeat, an IP lease, a
 * migration's two ends sharing their MAC, released allocations reusing a
 * VF and a MAC, finished and running migrations, and the audit log.
 */
import type { Allocation } from '../../src/domain/types.js';
import type { Store } from '../../src/store/store.js';
import { allocation as contractAllocation, endOf, migration } from '../contract/store.contract.js';
import { makeHost, makeNetwork } from './inventory.js';

const AT = '2025-01-01T00:00:00.000Z';

/** The contract's allocation, attached, on VF `vf` of host-a's first PF. */
function allocation(id: string, vf: number, fields: Partial<Allocation> = {}): Allocation {
  return contractAllocation({ id, workload: { kind: 'container', name: `cnf-${id}` }, vfIndex: vf, pciAddress: `0000:3b:02.${vf}`, mac: `02:00:00:00:00:0${vf}`, minTxRateMbps: 0, state: 'attached', ...fields });
}

/** Fills an empty `store`, with `allocations` more on hosts of their own and `events` audit events. */
export async function fillStore(store: Store, opts: { allocations?: number; events?: number } = {}): Promise<void> {
  const tx = store.tx;
  await tx.putPhysnet({ name: 'datacentre', accountingOnly: false, tenantVlans: [{ from: 100, to: 199 }] });
  await tx.putTenant({ id: '0123456789abcdef0123456789abcdef', name: 'blue', createdAt: AT });
  await tx.putTenant({ id: 'fedcba9876543210fedcba9876543210', name: 'red', createdAt: AT });
  await tx.putNetwork(makeNetwork({ name: 'blue-net', tenant: 'blue', vlan: 100, ipam: { cidr: '198.18.0.0/24', routes: [] } }));
  await tx.putNetwork(makeNetwork({ name: 'red-net', tenant: 'red', vlan: 101 }));
  await tx.putHost(makeHost({ name: 'host-a', pfs: 2, vfs: 8 }));
  await tx.putHost(makeHost({ name: 'host-b', pfs: 1, vfs: 4 }));
  await tx.touchHost('host-b', 'unreachable', '2025-01-01T00:07:00.000Z');
  await tx.putPolicy({ host: 'host-a', document: 'pfs: []\n', updatedAt: AT });
  await tx.putToken({ id: 'tok-admin', role: 'admin', tenantId: null, hash: 'a'.repeat(64), createdAt: AT });
  await tx.putToken({ id: 'tok-blue', role: 'tenant:blue', tenantId: '0123456789abcdef0123456789abcdef', hash: 'b'.repeat(64), createdAt: AT });

  const attached = allocation('alloc-ip', 1, { attachment: { kind: 'container', netns: '/var/run/netns/a', ifname: 'net1', hostIfName: null, ips: ['198.18.0.10/24', '198.18.0.11/24'] } });
  await tx.insertAllocation(attached);
  await tx.leaseAddresses('blue-net', attached.id, ['198.18.0.10', '198.18.0.11']);
  // A released allocation on the VF and MAC that a holding one uses now.
  await tx.insertAllocation(allocation('alloc-old', 2, { state: 'released', mac: '02:00:00:00:00:03' }));
  const source = allocation('alloc-src', 3, { migration: { id: 'mig-run', role: 'source' } });
  const dest = allocation('alloc-dst', 0, { host: 'host-b', pfPciAddress: '0000:5e:00.0', pciAddress: '0000:5e:02.0', state: 'pending', mac: source.mac, migration: { id: 'mig-run', role: 'destination' } });
  await tx.insertAllocation(source);
  await tx.insertAllocation(dest);
  await tx.insertMigration(migration('mig-done', attached, { state: 'completed', step: 'done' }));
  await tx.insertMigration(migration('mig-run', source, { to: endOf(dest), requested: { host: dest.host, pf: null }, step: 'switch' }));
  for (let i = 0; i < (opts.allocations ?? 0); i++) {
    await tx.insertAllocation(allocation(`bulk-${String(i).padStart(4, '0')}`, i % 8, { host: `bulk-host-${Math.floor(i / 8)}`, mac: `02:01:00:00:${String(Math.floor(i / 256) % 100).padStart(2, '0')}:${(i % 256).toString(16).padStart(2, '0')}` }));
  }
  for (let i = 0; i < (opts.events ?? 5); i++) {
    await tx.appendEvent({ at: AT, actor: 'admin', action: `test.${i}`, object: `obj-${i}`, before: i % 2 ? null : { n: i }, after: { n: i + 1 } });
  }
}
