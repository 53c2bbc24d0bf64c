/**
 * Two simulated hosts under one controller on a SQLite file, for migration
 * tests: the test plays each host's agent through `hosts.report` (statuses,
 * task results) and reads what the agent is told through `hosts.desired`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { AllocationStatus, DesiredAllocation, DesiredState, HypervisorTaskResult } from '../../src/controller/desired-state.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation } from '../../src/domain/types.js';
import type { HostInventory } from '../../src/host/model.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { policyOf } from './api-harness.js';
import { makeHost } from './inventory.js';

export const ADMIN: Actor = { id: 'test', role: 'admin' };
export const OPERATOR: Actor = { id: 'op', role: 'operator' };
export const TENANT: Actor = { id: 'acme-tok', role: 'tenant:acme' };
export const OTHER_TENANT: Actor = { id: 'other-tok', role: 'tenant:other' };
export const HOSTS = ['host-a', 'host-b'] as const;
export const agent = (host: string): Actor => ({ id: `${host}-tok`, role: `agent:${host}` });

export interface LabOptions {
  /** Both hosts report this bootId (one kernel split between two agents). */
  sharedBootId?: string;
  minTxRateMbps?: number;
  linkSpeedMbps?: number;
  vfs?: number;
}

export class MigrationLab {
  readonly inventories = new Map<string, HostInventory>();
  private constructor(
    readonly dir: string,
    public store: Store,
    public control: ControlPlane,
  ) {}

  static async open(opts: LabOptions = {}): Promise<MigrationLab> {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-migrate-'));
    const store = await openSqliteStore(dir);
    const lab = new MigrationLab(dir, store, await ControlPlane.open(store));
    for (const host of HOSTS) {
      const inventory = makeHost({ name: host, pfs: 2, vfs: opts.vfs ?? 4, driver: 'ice', linkSpeedMbps: opts.linkSpeedMbps ?? 10_000 }).inventory;
      lab.inventories.set(host, opts.sharedBootId ? { ...inventory, bootId: opts.sharedBootId } : inventory);
      await lab.report(host);
      await lab.control.hosts.putPolicy(ADMIN, host, policyOf([['fabric', 'ens1f0, ens2f0', 'fabric']]));
    }
    await lab.control.networks.createTenant(ADMIN, 'acme');
    await lab.control.networks.createTenant(ADMIN, 'other');
    const ipam = { cidr: '198.18.0.0/24', routes: [] };
    await lab.control.networks.createNetwork(ADMIN, { name: 'red', tenant: 'acme', physnet: 'fabric', vlan: 100, minTxRateMbps: opts.minTxRateMbps ?? 0, ipam });
    return lab;
  }

  get ctx() {
    return this.control.ctx;
  }

  report(host: string, statuses: AllocationStatus[] = [], results: HypervisorTaskResult[] = []) {
    return this.control.hosts.report(agent(host), this.inventories.get(host)!, statuses, [], results);
  }

  desired(host: string): Promise<DesiredState> {
    return this.control.hosts.desired(agent(host), host);
  }

  async desiredOf(host: string, id: string): Promise<DesiredAllocation | undefined> {
    return (await this.desired(host)).allocations.find((a) => a.id === id);
  }

  allocation(id: string): Promise<Allocation> {
    return this.store.tx.getAllocation(id).then((a) => a!);
  }

  /** A container attached on `host`/`pf`, as its agent reported it. */
  async container(name: string, host = 'host-a', pf = 0): Promise<Allocation> {
    const pciAddress = `0000:1${pf}:00.${[1, 2, 3, 4][(await this.heldOn(host, pf))]}`;
    const a = await this.control.allocations.create(ADMIN, {
      network: 'red',
      host,
      pciAddress,
      workload: { kind: 'container', name },
      attach: { kind: 'container', netns: `/var/run/netns/${name}`, ifname: 'net1' },
    });
    await this.report(host, [{ id: a.id, state: 'attached', hostIfName: `ens${pf + 1}v0` }]);
    return this.allocation(a.id);
  }

  /** A VM's VF on `host`/ens1f0, attached (with a virtio standby when `failover`). */
  async vm(name: string, failover: boolean, host = 'host-a'): Promise<Allocation> {
    const a = await this.control.allocations.create(ADMIN, { network: 'red', host, workload: { kind: 'vm', name }, attach: { kind: 'vm', vm: name, failover } });
    await this.report(host, [{ id: a.id, state: 'attached' }]);
    return this.allocation(a.id);
  }

  private async heldOn(host: string, pf: number): Promise<number> {
    return (await this.store.tx.listAllocations({ host, holding: true })).filter((a) => a.pf === `ens${pf + 1}f0`).length;
  }

  /** Everything the store holds that a refused request must leave as it was. */
  async snapshot(): Promise<string> {
    const tx = this.store.tx;
    const [allocations, migrations, events] = await Promise.all([tx.listAllocations(), tx.listMigrations(), tx.listEvents({ limit: 100_000 })]);
    return JSON.stringify({ allocations, migrations, events: events.length, leases: await tx.listLeases('red') });
  }

  /** Closes the controller and opens a new one on the same SQLite file, as a restart does. */
  async reopen(): Promise<void> {
    this.control.shutdown();
    await this.store.close();
    this.store = await openSqliteStore(this.dir);
    this.control = await ControlPlane.open(this.store);
  }

  async close(): Promise<void> {
    this.control.shutdown();
    await this.store.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}
