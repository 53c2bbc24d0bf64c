/** Tenants, physical networks and networks. */
import { randomUUID } from 'node:crypto';
import { agentHostOf, forbidden, notFound, requireAdmin, requireStaff, requireTenantAccess, tenantOf, type Actor } from '../domain/actor.js';
import { checkNetwork } from '../domain/invariants.js';
import { parsePool } from '../domain/ipam.js';
import type { DeviceType, IpPool, Network, Physnet, Tenant } from '../domain/types.js';
import { SriovError, invalid } from '../host/errors.js';
import type { VlanProto } from '../host/model.js';
import { parseMtu, parseQos, parseRateMbps, parseVlan, parseVlanProto } from '../host/validate.js';
import { recorded, type Context } from './context.js';
import { revokeTenantTokens } from './tokens.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

// Host names may be FQDNs (node1.example.com); lower case, as Kubernetes node names are.
const HOST_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export function parseHostName(value: unknown): string {
  if (typeof value !== 'string' || !HOST_NAME.test(value)) {
    throw invalid(`host name must be a lower-case DNS name (letters, digits, '-' and '.'), got ${JSON.stringify(value)}`);
  }
  return value;
}

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
  vlan: number;
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

export class NetworkService {
  constructor(private readonly ctx: Context) {}

  listTenants(actor: Actor): Promise<Tenant[]> {
    if (agentHostOf(actor)) throw forbidden(actor, 'list tenants');
    const own = tenantOf(actor);
    return this.ctx.store.tx.listTenants().then((all) => (own ? all.filter((t) => t.name === own) : all));
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
    return this.ctx.store.tx.listPhysnets();
  }

  async putPhysnet(actor: Actor, name: string, accountingOnly: boolean): Promise<Physnet> {
    requireAdmin(actor, 'change physical networks');
    const physnet = { name: parseName(name, 'physnet'), accountingOnly };
    await recorded(this.ctx, actor, 'physnet.put', `physnet/${name}`, async (tx) => {
      const before = (await tx.listPhysnets()).find((p) => p.name === name) ?? null;
      await tx.putPhysnet(physnet);
      return { before, after: physnet, result: undefined };
    });
    this.ctx.scheduler.putPhysnet(physnet);
    return physnet;
  }

  async listNetworks(actor: Actor): Promise<Network[]> {
    if (agentHostOf(actor)) throw forbidden(actor, 'list networks');
    const own = tenantOf(actor);
    return this.ctx.store.tx.listNetworks(own ? { tenant: own } : undefined);
  }

  async getNetwork(actor: Actor, name: string): Promise<Network> {
    const network = await this.ctx.store.tx.getNetwork(name);
    if (!network) throw notFound('network', name);
    requireTenantAccess(actor, network.tenant, 'network', name);
    return network;
  }

  async createNetwork(actor: Actor, input: NetworkInput): Promise<Network> {
    const network = this.toNetwork(input);
    requireTenantAccess(actor, network.tenant, 'tenant', network.tenant);
    return recorded(this.ctx, actor, 'network.create', `network/${network.name}`, async (tx) => {
      if (!(await tx.getTenant(network.tenant))) throw notFound('tenant', network.tenant);
      if (await tx.getNetwork(network.name)) throw new SriovError('CONFLICT', `network ${network.name} exists`, { object: network.name });
      checkNetwork(network, actor, await tx.listPhysnets(), await tx.listNetworks({ physnet: network.physnet, vlan: network.vlan }));
      await tx.putNetwork(network);
      return { before: null, after: network, result: network };
    });
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
  }

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
      vlan: parseVlan(i.vlan),
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
