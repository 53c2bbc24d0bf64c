/**
 * The fleet as this controller holds it in memory (the scheduler's index
 * and the host service's liveness), never read from the store: a scrape of
 * 1,000 hosts costs no inventory read. Per host and PF, so the series
 * number (hosts × PFs) is bounded by the hardware, never by allocations.
 */
import type { Network } from '../../domain/types.js';
import type { HostEntry, PfEntry, Scheduler } from '../../scheduler/index.js';
import { scraped, type MetricsContext, type Sample } from './family.js';

const HOST_STATES = ['ready', 'unreachable'] as const;

export function fleetMetrics({ registry, control }: MetricsContext): void {
  const { scheduler } = control.ctx;
  const perPf = (value: (pf: PfEntry) => number | null) => () => pfSamples(scheduler, value);
  scraped(registry, 'vfleet_hosts', 'Hosts by state', 'gauge', () => hostsByState(scheduler.hosts()));
  scraped(registry, 'vfleet_vfs', 'VFs in host inventories, free or held by an allocation', 'gauge', () => vfSamples(scheduler));
  scraped(registry, 'vfleet_pf_link_up', "The PF's link as last reported: 1 up, 0 down (no sample while unknown)", 'gauge', perPf(linkUp));
  scraped(registry, 'vfleet_pf_link_speed_mbps', 'PF link speed as last reported, Mbps (no sample while unknown or down)', 'gauge', perPf((pf) => pf.linkSpeedMbps));
  scraped(registry, 'vfleet_pf_capacity_mbps', 'What the min rates (guarantees) on a PF may add up to: link speed × the bandwidth ratio, Mbps', 'gauge', perPf((pf) => capacity(scheduler, pf)));
  scraped(registry, 'vfleet_pf_committed_min_rate_mbps', 'Sum of the min rates (guarantees) of the allocations holding VFs of a PF, Mbps', 'gauge', perPf((pf) => pf.committedMbps));
  scraped(registry, 'vfleet_pf_committed_max_rate_mbps', "Sum of the max rates (caps) of the allocations holding VFs of a PF, from their networks, Mbps; uncapped ones add 0", 'gauge', async () => {
    const maxRates = committedMaxRates(scheduler, await control.ctx.reads.listNetworks());
    return pfSamples(scheduler, (pf) => maxRates.get(pf.key) ?? 0);
  });
  scraped(registry, 'vfleet_host_heartbeat_age_seconds', "Seconds since this controller last heard from the host's agent (a restarted controller counts from its start)", 'gauge', () =>
    heartbeatAges(scheduler.hosts(), (name) => control.hosts.lastSeenAt(name), Date.now()),
  );
}

function hostsByState(hosts: Iterable<HostEntry>): Sample[] {
  const count = new Map<string, number>(HOST_STATES.map((s) => [s, 0]));
  for (const h of hosts) count.set(h.state, (count.get(h.state) ?? 0) + 1);
  return [...count].map(([state, value]) => ({ labels: { state }, value }));
}

function pfSamples(scheduler: Scheduler, value: (pf: PfEntry) => number | null): Sample[] {
  const out: Sample[] = [];
  for (const host of scheduler.hosts()) {
    for (const pf of host.pfs.values()) {
      const v = value(pf);
      if (v !== null) out.push({ labels: { host: host.name, pf: pf.name }, value: v });
    }
  }
  return out;
}

function vfSamples(scheduler: Scheduler): Sample[] {
  const out: Sample[] = [];
  for (const host of scheduler.hosts()) {
    for (const pf of host.pfs.values()) {
      const free = pf.free.size;
      out.push({ labels: { host: host.name, pf: pf.name, state: 'allocated' }, value: pf.vfPci.size - free });
      out.push({ labels: { host: host.name, pf: pf.name, state: 'free' }, value: free });
    }
  }
  return out;
}

function linkUp(pf: PfEntry): number | null {
  return pf.linkState === 'up' ? 1 : pf.linkState === 'down' ? 0 : null;
}

/** As `GET /v1/hosts` gives it (host-summaries.ts): null without a link speed. */
function capacity(scheduler: Scheduler, pf: PfEntry): number | null {
  return pf.linkSpeedMbps === null ? null : Math.floor(pf.linkSpeedMbps * scheduler.options.bandwidthRatio);
}

/**
 * PF key → the sum of the max rates of the allocations holding its VFs. The
 * rate is the network's now (a network's change reaches its VFs), so it is
 * summed at scrape time: one pass over the holdings, a map lookup each.
 */
export function committedMaxRates(scheduler: Scheduler, networks: Network[]): Map<string, number> {
  const rate = new Map(networks.map((n) => [n.name, n.maxTxRateMbps]));
  const sums = new Map<string, number>();
  for (const h of scheduler.holdings()) {
    const r = rate.get(h.network) ?? 0;
    if (r === 0) continue;
    const key = `${h.host}|${h.pfPciAddress}`; // PfEntry.key
    sums.set(key, (sums.get(key) ?? 0) + r);
  }
  return sums;
}

function heartbeatAges(hosts: Iterable<HostEntry>, lastSeenAt: (name: string) => number | undefined, now: number): Sample[] {
  const out: Sample[] = [];
  for (const h of hosts) {
    const seen = lastSeenAt(h.name);
    if (seen !== undefined) out.push({ labels: { host: h.name }, value: Math.max(0, now - seen) / 1000 });
  }
  return out;
}
