/** Tenants, physical networks and networks. */
import { randomUUID } from 'node:crypto';
import { agentHostOf, forbidden, isStaff, nodeHostOf, notFound, requireAdmin, requireStaff, requireTenantAccess, tenantOf, type Actor } from '../domain/actor.js';
import { checkLinkSpeed, checkNetwork, physnetOf } from '../domain/invariants.js';
import { parsePool } from '../domain/ipam.js';
import type { Allocation, DeviceType, HostState, IpPool, Network, Physnet, Tenant, VlanRange } from '../domain/types.js';
import { checkVlanRanges, chooseVlan } from '../domain/vlan-ranges.js';
import { SriovError, atField, invalid } from '../host/errors.js';
import type { VlanProto } from '../host/model.js';
import { parseMtu, parseQos, parseRateMbps, parseVlan, parseVlanProto } from '../host/validate.js';
import type { StoreReads } from './read-mirror.js';
import { CATALOGUE, recorded, type Context } from './context.js';
import { setTenantGroup, showTenant, type TenantChange, type TenantView } from './tenant-groups.js';
import { revokeTenantTokens } from './tokens.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function parseName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw invalid(`${what} name must be 1-63 lower-case letters, digits and '-', got ${JSON.stringify(value)}`);
  }
  return value;
}

export interface NetworkInput {
  name: string;
  tenant: string;
  physnet: string;
  /** Admins and operators only; left out, the next free VLAN of the physnet's tenant ranges. */
  vlan?: number;
  qos?: number;
  vlanProto?: string;
  mtu?: number | null;
  spoofChk?: boolean;
  trust?: boolean;
  maxTxRateMbps?: number;
  minTxRateMbps?: number;
  deviceType?: DeviceType;
  ipam?: Omit<IpPool, 'routes'> & { routes?: IpPool['routes'] };
}

/** `GET /v1/networks/:name/capacity?host=H`. */
export interface NetworkCapacity {
  network: string;
  host: string;
  hostState: HostState;
  /** VFs on the host a new allocation of the network could be placed on. */
  freeVfs: number;
}

/**
 * `PUT /v1/networks/:name`: the fields to change. Name and tenant never
 * change (the name is the network's key in allocations, leases and NADs; the
 * VLAN belongs to the tenant): make a new network instead.
 */
export type NetworkChange = Partial<Omit<NetworkInput, 'name' | 'tenant' | 'ipam'>> & { ipam?: NetworkInput['ipam'] | null };

/**
 * What allocations already hold: their VFs sit on the physnet's VLAN with the
 * network's protocol and driver, their guarantees are accounted on their PFs
 * and their addresses are leased from the pool. Changing one of these under
 * them would move traffic or break accounting, so it waits until none holds a VF.
 * The others (rate limit, 802.1p priority, spoof checking, trust, MTU) agents
 * apply to the VFs in place, as they repair drift.
 */
const HELD_FIELDS = ['physnet', 'vlan', 'vlanProto', 'deviceType', 'minTxRateMbps', 'ipam'] as const;

/** `PUT /v1/physnets/:name`: the fields to change. */
export interface PhysnetChange {
  accountingOnly?: boolean;
  groupsAccountingOnly?: boolean;
  tenantVlans?: VlanRange[];
}

export class NetworkService {
  constructor(private readonly ctx: Context) {}

  listTenants(actor: Actor): Promise<Tenant[]> {
    if (agentHostOf(actor)) throw forbidden(actor, 'list tenants');
    const own = tenantOf(actor);
    return this.ctx.reads.listTenants().then((all) => (own ? all.filter((t) => t.name === own) : all));
  }

  async createTenant(actor: Actor, name: string): Promise<Tenant> {
    requireAdmin(actor, 'create tenants');
    const tenant: Tenant = { id: randomUUID(), name: atField('name', () => parseName(name, 'tenant')), pfMinTxRateMbps: null, pfMaxTxRateMbps: null, createdAt: this.ctx.now() };
    return recorded(this.ctx, actor, 'tenant.create', `tenant/${name}`, async (tx) => {
      if (await tx.getTenant(name)) throw new SriovError('CONFLICT', `tenant ${name} exists`, { object: name });
      await tx.putTenant(tenant);
      return { before: null, after: tenant, result: tenant };
    });
  }

  async deleteTenant(actor: Actor, name: string): Promise<void> {
    requireAdmin(actor, 'delete tenants');
    await recorded(this.ctx, actor, 'tenant.delete', `tenant/${name}`, async (tx) => {
      const before = await tx.getTenant(name);
      if (!before) throw notFound('tenant', name);
      if ((await tx.listNetworks({ tenant: name })).length > 0) {
        throw new SriovError('CONFLICT', `tenant ${name} still has networks`, { object: name });
      }
      await tx.deleteTenant(name);
      await revokeTenantTokens(tx, actor, before, this.ctx.now());
      return { before, after: null, result: undefined };
    });
    this.ctx.scheduler.removeTenant(name);
  }

  /** `tenant set`: the tenant's bandwidth group (tenant-groups.ts). */
  setTenant(actor: Actor, name: string, change: TenantChange): Promise<Tenant> {
    return setTenantGroup(this.ctx, actor, name, change);
  }

  /** `tenant show`: the tenant and its bandwidth group per PF. */
  showTenant(actor: Actor, name: string): Promise<TenantView> {
    return showTenant(this.ctx, actor, name);
  }

  listPhysnets(actor: Actor): Promise<Physnet[]> {
    requireStaff(actor, 'list physical networks');
    return this.ctx.reads.listPhysnets();
  }

  /** Creates or changes a physnet; fields left out keep their value (a new physnet: off, no ranges). */
  async putPhysnet(actor: Actor, name: string, change: PhysnetChange): Promise<Physnet> {
    requireAdmin(actor, 'change physical networks');
    parseName(name, 'physnet');
    const tenantVlans = change.tenantVlans === undefined ? undefined : atField('tenantVlans', () => checkVlanRanges(change.tenantVlans!));
    const physnet = await recorded(this.ctx, actor, 'physnet.put', `physnet/${name}`, async (tx) => {
      const before = (await tx.listPhysnets()).find((p) => p.name === name) ?? null;
      const after: Physnet = {
        name,
        accountingOnly: change.accountingOnly ?? before?.accountingOnly ?? false,
        groupsAccountingOnly: change.groupsAccountingOnly ?? before?.groupsAccountingOnly ?? false,
        tenantVlans: tenantVlans ?? before?.tenantVlans ?? [],
      };
      await tx.putPhysnet(after);
      return { before, after, result: after };
    });
    this.ctx.scheduler.putPhysnet(physnet);
    this.ctx.catalogue.bump(CATALOGUE);
    return physnet;
  }

  async listNetworks(actor: Actor): Promise<Network[]> {
    if (agentHostOf(actor)) throw forbidden(actor, 'list networks');
    const own = tenantOf(actor);
    return this.ctx.reads.listNetworks(own ? { tenant: own } : undefined);
  }

  /** `from`: the store, unless the caller only shows the network (the API's GET: `ctx.reads`). */
  async getNetwork(actor: Actor, name: string, from: Pick<StoreReads, 'getNetwork'> = this.ctx.store.tx): Promise<Network> {
    return this.visible(actor, name, await from.getNetwork(name));
  }

  /** `network`, read as `name`, if `actor` may use it. */
  visible(actor: Actor, name: string, network: Network | null): Network {
    if (!network) throw notFound('network', name);
    requireTenantAccess(actor, network.tenant, 'network', name);
    return network;
  }

  /**
   * Whether an allocation of `name` could be placed on `host` now: the host's
   * state and its VFs that would admit one. For the CNI plugin's STATUS: a
   * node asks for its own host only; staff for any.
   */
  async capacity(actor: Actor, name: string, host: string): Promise<NetworkCapacity> {
    const node = nodeHostOf(actor);
    if (node !== null && node !== host) throw forbidden(actor, `read the capacity of host ${host}`);
    if (node === null && !isStaff(actor)) throw forbidden(actor, 'read host capacity');
    const network = await this.getNetwork(actor, name);
    const free = this.ctx.scheduler.freeVfs(network, host);
    if (!free) throw notFound('host', host);
    return { network: name, host, ...free };
  }

  async createNetwork(actor: Actor, input: NetworkInput): Promise<Network> {
    const requested = input.vlan === undefined ? undefined : parseVlan(input.vlan);
    const unplaced = this.toNetwork(input);
    requireTenantAccess(actor, unplaced.tenant, 'tenant', unplaced.tenant);
    const created = await recorded(this.ctx, actor, 'network.create', `network/${unplaced.name}`, async (tx) => {
      if (!(await tx.getTenant(unplaced.tenant))) throw notFound('tenant', unplaced.tenant);
      if (await tx.getNetwork(unplaced.name)) throw new SriovError('CONFLICT', `network ${unplaced.name} exists`, { object: unplaced.name });
      const physnets = await tx.listPhysnets();
      const physnet = physnetOf(unplaced.physnet, physnets);
      const onPhysnet = await tx.listNetworks({ physnet: physnet.name });
      const network = { ...unplaced, vlan: chooseVlan(requested, actor, physnet, new Set(onPhysnet.map((n) => n.vlan)), unplaced.name) };
      checkNetwork(network, actor, physnets, onPhysnet.filter((n) => n.vlan === network.vlan));
      // From the scheduler's index, not the stored hosts: reading every host's ~100 KB inventory in the
      // transaction cost ~100 MB at 1,000 hosts, and on etcd any host's report failed its commit (it lost every race).
      checkLinkSpeed(network, this.ctx.scheduler.linkSpeedsOn(network.physnet), `the fastest PF on physnet ${network.physnet}`);
      await tx.putNetwork(network);
      return { before: null, after: network, result: network };
    });
    // Device plugins serving this network (maybe before it existed) list its VFs now.
    this.ctx.catalogue.bump(CATALOGUE);
    return created;
  }

  /**
   * Changes the fields given. A change to a field allocations depend on
   * (HELD_FIELDS) is refused while any holds a VF, naming them; the rest reach
   * the VFs through their hosts' desired state.
   */
  async updateNetwork(actor: Actor, name: string, change: NetworkChange): Promise<Network> {
    const requested = change.vlan === undefined ? undefined : atField('vlan', () => parseVlan(change.vlan!));
    const { network, hosts } = await recorded(this.ctx, actor, 'network.update', `network/${name}`, async (tx) => {
      const before = await this.getNetwork(actor, name, tx);
      const after = this.changed(before, change, requested);
      if (requested !== undefined && requested !== before.vlan && !isStaff(actor)) {
        throw new SriovError('FORBIDDEN', `only an admin or operator may change a network's VLAN; ${actor.role} may not change ${name}'s`, { object: name, field: 'vlan', nothingChanged: true });
      }
      const moved = HELD_FIELDS.filter((f) => JSON.stringify(before[f]) !== JSON.stringify(after[f]));
      const holding = await tx.listAllocations({ network: name, holding: true });
      if (moved.length > 0 && holding.length > 0) throw heldConflict(name, moved, holding);
      const physnets = await tx.listPhysnets();
      const onPhysnet = await tx.listNetworks({ physnet: after.physnet });
      checkNetwork(after, actor, physnets, onPhysnet.filter((n) => n.vlan === after.vlan), before);
      checkLinkSpeed(after, this.ctx.scheduler.linkSpeedsOn(after.physnet), `the fastest PF on physnet ${after.physnet}`);
      await tx.putNetwork(after);
      return { before, after, result: { network: after, hosts: new Set(holding.map((a) => a.host)) } };
    });
    // Agents holding its VFs apply the new settings; device views list them anew.
    for (const host of hosts) this.ctx.feed.bump(host);
    this.ctx.catalogue.bump(CATALOGUE);
    return network;
  }

  async deleteNetwork(actor: Actor, name: string): Promise<void> {
    const before = await this.getNetwork(actor, name);
    await recorded(this.ctx, actor, 'network.delete', `network/${name}`, async (tx) => {
      // Refused by the store while allocations hold VFs on it (networkInUse).
      await tx.deleteNetwork(name);
      return { before, after: null, result: undefined };
    });
    this.ctx.catalogue.bump(CATALOGUE);
  }

  /** The network as asked for, its VLAN still to be chosen (0 until then). */
  private toNetwork(i: NetworkInput): Network {
    return {
      ...settingsOf(i),
      name: atField('name', () => parseName(i.name, 'network')),
      tenant: atField('tenant', () => parseName(i.tenant, 'tenant')),
      physnet: atField('physnet', () => parseName(i.physnet, 'physnet')),
      vlan: 0,
      createdAt: this.ctx.now(),
    };
  }

  /** `before` with the fields `change` gives; the others keep their value. */
  private changed(before: Network, change: NetworkChange, vlan: number | undefined): Network {
    const given = Object.fromEntries(Object.entries(settingsOf(change, before)).filter(([k]) => (change as Record<string, unknown>)[k] !== undefined));
    const physnet = change.physnet === undefined ? before.physnet : atField('physnet', () => parseName(change.physnet, 'physnet'));
    return { ...before, ...given, physnet, vlan: vlan ?? before.vlan };
  }
}

/** The VF settings of a network's input, each checked and named by its field; left out: `defaults`' (a new network's). */
function settingsOf(i: NetworkChange, defaults?: Network): Omit<Network, 'name' | 'tenant' | 'physnet' | 'vlan' | 'createdAt'> {
  if (i.deviceType !== undefined && i.deviceType !== 'netdevice' && i.deviceType !== 'vfio-pci') {
    throw invalid(`device type must be netdevice or vfio-pci, got ${JSON.stringify(i.deviceType)}`, undefined, 'deviceType');
  }
  const vlanProto: VlanProto = i.vlanProto === undefined ? (defaults?.vlanProto ?? '802.1Q') : atField('vlanProto', () => parseVlanProto(i.vlanProto!));
  return {
    qos: atField('qos', () => parseQos(i.qos ?? defaults?.qos ?? 0)),
    vlanProto,
    mtu: i.mtu === undefined ? (defaults?.mtu ?? null) : i.mtu === null ? null : atField('mtu', () => parseMtu(i.mtu!)),
    spoofChk: i.spoofChk ?? defaults?.spoofChk ?? true,
    trust: i.trust ?? defaults?.trust ?? false,
    maxTxRateMbps: atField('maxTxRateMbps', () => parseRateMbps(i.maxTxRateMbps ?? defaults?.maxTxRateMbps ?? 0, 'max tx rate')),
    minTxRateMbps: atField('minTxRateMbps', () => parseRateMbps(i.minTxRateMbps ?? defaults?.minTxRateMbps ?? 0, 'min tx rate')),
    deviceType: i.deviceType ?? defaults?.deviceType ?? 'netdevice',
    ipam: i.ipam === undefined ? (defaults?.ipam ?? null) : i.ipam === null ? null : atField('ipam', () => parsePool({ ...i.ipam!, routes: i.ipam!.routes ?? [] })),
  };
}

/** One line: what may not change, and the allocations (the first few) that hold the network. */
function heldConflict(name: string, fields: readonly string[], holding: Allocation[]): SriovError {
  const shown = holding.slice(0, 3).map((a) => `${a.id} (${a.workload.kind} ${a.workload.name} on ${a.host})`);
  const more = holding.length > shown.length ? ` and ${holding.length - shown.length} more` : '';
  return new SriovError(
    'CONFLICT',
    `network ${name}: ${fields.join(', ')} cannot change while ${holding.length} allocation${holding.length === 1 ? '' : 's'} hold${holding.length === 1 ? 's' : ''} its VFs: ${shown.join(', ')}${more}; release them first`,
    { object: name, field: fields[0], nothingChanged: true, data: { fields, allocations: holding.map((a) => a.id) } },
  );
}

