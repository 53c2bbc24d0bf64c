/**
 * The /metrics of main at 712b898, before src/api/metrics/ (its fleet
 * gauges refreshed from the store at every scrape: every host record with
 * its inventory, every allocation), kept as the baseline of
 * bench/metrics-scrape.ts. Not served anywhere.
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ControlPlane } from '../src/controller/control-plane.js';
import { HOLDING_STATES, type Allocation, type AllocationState, type HostRecord, type HostState } from '../src/domain/types.js';

const HOST_STATES: HostState[] = ['ready', 'unreachable'];
const ALLOCATION_STATES: AllocationState[] = ['pending', 'configured', 'attached', 'releasing', 'released', 'failed'];

interface FleetGauges {
  hosts: Gauge<'state'>;
  vfs: Gauge<'host' | 'pf' | 'state'>;
  allocations: Gauge<'state'>;
  committed: Gauge<'host' | 'pf'>;
  linkSpeed: Gauge<'host' | 'pf'>;
}

export function registerBaselineMetrics(app: FastifyInstance, control: ControlPlane): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauges = fleetGauges(registry);
  app.get('/metrics', async (_request, reply) => {
    await refreshFleet(control, gauges);
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}

function fleetGauges(registry: Registry): FleetGauges {
  const registers = [registry];
  return {
    hosts: new Gauge({ name: 'vfleet_hosts', help: 'Hosts by state', labelNames: ['state'] as const, registers }),
    vfs: new Gauge({ name: 'vfleet_vfs', help: 'VFs in host inventories, free or held by an allocation', labelNames: ['host', 'pf', 'state'] as const, registers }),
    allocations: new Gauge({ name: 'vfleet_allocations', help: 'Allocations by state', labelNames: ['state'] as const, registers }),
    committed: new Gauge({ name: 'vfleet_pf_min_tx_committed_mbps', help: 'Bandwidth guarantees committed on a PF, Mbps', labelNames: ['host', 'pf'] as const, registers }),
    linkSpeed: new Gauge({ name: 'vfleet_pf_link_speed_mbps', help: 'PF link speed as last reported, Mbps', labelNames: ['host', 'pf'] as const, registers }),
  };
}

async function refreshFleet(control: ControlPlane, g: FleetGauges): Promise<void> {
  const tx = control.ctx.store.tx;
  const [hosts, allocations] = await Promise.all([tx.listHosts(), tx.listAllocations()]);
  // Reset so hosts and PFs that went away stop being reported.
  for (const gauge of Object.values(g)) gauge.reset();
  for (const state of HOST_STATES) g.hosts.set({ state }, hosts.filter((h) => h.state === state).length);
  for (const state of ALLOCATION_STATES) g.allocations.set({ state }, allocations.filter((a) => a.state === state).length);
  const byPf = holdingByPf(allocations);
  for (const host of hosts) setPfGauges(g, host, byPf);
}

/** `host|pfPciAddress` → the allocations holding a VF there. */
function holdingByPf(allocations: Allocation[]): Map<string, Allocation[]> {
  const byPf = new Map<string, Allocation[]>();
  for (const a of allocations.filter((x) => HOLDING_STATES.includes(x.state))) {
    const key = `${a.host}|${a.pfPciAddress}`;
    const list = byPf.get(key);
    if (list) list.push(a);
    else byPf.set(key, [a]);
  }
  return byPf;
}

function setPfGauges(g: FleetGauges, host: HostRecord, byPf: Map<string, Allocation[]>): void {
  for (const pf of host.inventory.pfs) {
    const labels = { host: host.name, pf: pf.name };
    const onPf = byPf.get(`${host.name}|${pf.pciAddress}`) ?? [];
    const inventoried = new Set(pf.vfs.map((vf) => vf.index));
    const allocated = onPf.filter((a) => inventoried.has(a.vfIndex)).length;
    g.vfs.set({ ...labels, state: 'allocated' }, allocated);
    g.vfs.set({ ...labels, state: 'free' }, inventoried.size - allocated);
    g.committed.set(labels, onPf.reduce((sum, a) => sum + a.minTxRateMbps, 0));
    if (pf.linkSpeedMbps !== null) g.linkSpeed.set(labels, pf.linkSpeedMbps);
  }
}
