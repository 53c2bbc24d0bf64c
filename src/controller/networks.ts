/** Tenants, physical networks and networks. */
import { randomUUID } from 'node:crypto';
import { agentHostOf, forbidden, isStaff, nodeHostOf, notFound, requireAdmin, requireStaff, requireTenantAccess, tenantOf, type Actor } from '../domain/actor.js';
import { checkLinkSpeed, checkNetwork, physnetOf } from '../domain/invariants.js';
import { parsePool } from '../domain/ipam.js';
import type { DeviceType, HostRecord, HostState, IpPool, Network, Physnet, Tenant, VlanRange } from '../domain/types.js';
import { checkVlanRanges, chooseVlan } from '../domain/vlan-ranges.js';
import { SriovError, invalid } from '../host/errors.js';
import type { VlanProto } from '../host/model.js';
import { parseMtu, parseQos, parseRateMbps, parseVlan, parseVlanProto } from '../host/validate.js';
import type { StoreReads } from './read-mirror.js';
import { CATALOGUE, recorded, type Context } from './context.js';
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

/** `PUT /v1/physnets/:name`: the fields to change. */
export interface PhysnetChange {
  accountingOnly?: boolean;
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
    const tenant = { id: randomUUID(), name: parseName(name, 'tenant'), createdAt: this.ctx.now() };
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
  }

  listPhysnets(actor: Actor): Promise<Physnet[]> {
    requireStaff(actor, 'list physical networks');
    return this.ctx.reads.listPhysnets();
  }

  /** Creates or changes a physnet; fields left out keep their value (a new physnet: off, no ranges). */
  async putPhysnet(actor: Actor, name: string, change: PhysnetChange): Promise<Physnet> {
    requireAdmin(actor, 'change physical networks');
    parseName(name, 'physnet');
    const tenantVlans = change.tenantVlans === undefined ? undefined : checkVlanRanges(change.tenantVlans);
    const physnet = await recorded(this.ctx, actor, 'physnet.put', `physnet/${name}`, async (tx) => {
      const before = (await tx.listPhysnets()).find((p) => p.name === name) ?? null;
      const after: Physnet = {
        name,
        accountingOnly: change.accountingOnly ?? before?.accountingOnly ?? false,
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
      checkLinkSpeed(network, linkSpeedsOf(await tx.listHosts(), network.physnet), `the fastest PF on physnet ${network.physnet}`);
      await tx.putNetwork(network);
      return { before: null, after: network, result: network };
    });
    // Device plugins serving this network (maybe before it existed) list its VFs now.
    this.ctx.catalogue.bump(CATALOGUE);
    return created;
  }

  async deleteNetwork(actor: Actor, name: string): Promise<void> {
    const before = await this.getNetwork(actor, name);
    await recorded(this.ctx, actor, 'network.delete', `network/${name}`, async (tx) => {
      if ((await tx.listAllocations({ network: name, holding: true })).length > 0) {
        throw new SriovError('CONFLICT', `network ${name} still has allocations`, { object: name });
      }
      await tx.deleteNetwork(name);
      return { before, after: null, result: undefined };
    });
    this.ctx.catalogue.bump(CATALOGUE);
  }

  /** The network as asked for, its VLAN still to be chosen (0 until then). */
  private toNetwork(i: NetworkInput): Network {
    const vlanProto: VlanProto = i.vlanProto === undefined ? '802.1Q' : parseVlanProto(i.vlanProto);
    const maxTxRateMbps = parseRateMbps(i.maxTxRateMbps ?? 0, 'max tx rate');
    const minTxRateMbps = parseRateMbps(i.minTxRateMbps ?? 0, 'min tx rate');
    if (i.deviceType !== undefined && i.deviceType !== 'netdevice' && i.deviceType !== 'vfio-pci') {
      throw invalid(`device type must be netdevice or vfio-pci, got ${JSON.stringify(i.deviceType)}`);
    }
    return {
      name: parseName(i.name, 'network'),
      tenant: parseName(i.tenant, 'tenant'),
      physnet: parseName(i.physnet, 'physnet'),
      vlan: 0,
      qos: parseQos(i.qos ?? 0),
      vlanProto,
      mtu: i.mtu === undefined || i.mtu === null ? null : parseMtu(i.mtu),
      spoofChk: i.spoofChk ?? true,
      trust: i.trust ?? false,
      maxTxRateMbps,
      minTxRateMbps,
      deviceType: i.deviceType ?? 'netdevice',
      ipam: i.ipam ? parsePool({ ...i.ipam, routes: i.ipam.routes ?? [] }) : null,
      createdAt: this.ctx.now(),
    };
  }
}

/** Known link speeds (Mbps) of the PFs node policies put on `physnet`. */
function linkSpeedsOf(hosts: HostRecord[], physnet: string): number[] {
  return hosts.flatMap((h) => h.inventory.pfs.filter((pf) => h.physnets[pf.pciAddress] === physnet && pf.linkSpeedMbps !== null).map((pf) => pf.linkSpeedMbps!));
}
