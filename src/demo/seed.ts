/**
 * The first run's demo: on a machine without SR-IOV hardware, `sriovd`
 * fills an empty store with a small, working setup on its simulated NIC, so
 * the console shows the product instead of zeros. Everything goes through
 * the control-plane services as the admin actor `demo`, exactly as `sriovctl
 * host apply`, `tenant create`, `network create` and `attach container` would:
 * the node policy is stored and the agent applies it; the containers are
 * simulated network namespaces (files, as the simulated host models them).
 *
 * Seeding is idempotent: each step checks whether its object exists, so a
 * restart (or a restart after a crash half-way) creates nothing twice. A store
 * that holds anything the demo did not put there is left alone.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControlPlane } from '../controller/control-plane.js';
import type { NetworkInput } from '../controller/networks.js';
import type { Actor } from '../domain/actor.js';

export const DEMO_ACTOR: Actor = { id: 'demo', role: 'admin' };

export const DEMO_PHYSNET = 'demo-fabric';
export const DEMO_TENANT = 'demo';
/** Tenant VLANs of the demo physnet; the demo network's VLAN is the first of them. */
export const DEMO_TENANT_VLANS = [{ from: 1000, to: 1099 }];
const VFS_PER_PF = 8;

/** The node policy the demo stores for its host: 8 VFs on each E810 port, on the demo physnet. */
export const DEMO_POLICY = `# vfleet demo (simulated): 8 VFs on each port of the E810, on ${DEMO_PHYSNET}
policies:
  - name: demo-fabric
    selector: { drivers: [ice] }
    numVfs: ${VFS_PER_PF}
    deviceType: netdevice
    mtu: 9000
    physnet: ${DEMO_PHYSNET}
`;

/** A 5G user-plane network with a guaranteed 2 Gbit/s per VF and addresses from 198.18.10.0/24. */
export const DEMO_NETWORK: NetworkInput = {
  name: 'demo-n3',
  tenant: DEMO_TENANT,
  physnet: DEMO_PHYSNET,
  vlan: DEMO_TENANT_VLANS[0]!.from,
  mtu: 9000,
  minTxRateMbps: 2000,
  maxTxRateMbps: 10000,
  ipam: { cidr: '198.18.10.0/24', rangeStart: '198.18.10.10', rangeEnd: '198.18.10.99', gateway: '198.18.10.1' },
};

/** Simulated containers: the UPF has two VFs in a redundancy group (one per port), the SMF one. */
export const DEMO_ATTACHMENTS = [
  { workload: 'upf-1', ifname: 'net1', group: 'n3' },
  { workload: 'upf-1', ifname: 'net2', group: 'n3' },
  { workload: 'smf-1', ifname: 'net1', group: null },
] as const;

export interface DemoOptions {
  /** The host the daemon's own agent manages (a simulated one). */
  host: string;
  /** The simulated containers' namespaces are kept in `<dataDir>/demo-netns/`. */
  dataDir: string;
  /** How long to wait for the agent to create the VFs. */
  timeoutMs?: number;
}

export type DemoOutcome = 'seeded' | 'left-alone';

export async function seedDemo(control: ControlPlane, opts: DemoOptions): Promise<DemoOutcome> {
  if (!(await isDemoStore(control, opts.host))) return 'left-alone';
  if ((await control.hosts.getPolicy(DEMO_ACTOR, opts.host)) === null) await control.hosts.putPolicy(DEMO_ACTOR, opts.host, DEMO_POLICY);
  await waitForVfs(control, opts.host, opts.timeoutMs ?? 60_000);
  await control.networks.putPhysnet(DEMO_ACTOR, DEMO_PHYSNET, { tenantVlans: DEMO_TENANT_VLANS });
  const tenants = await control.networks.listTenants(DEMO_ACTOR);
  if (!tenants.some((t) => t.name === DEMO_TENANT)) await control.networks.createTenant(DEMO_ACTOR, DEMO_TENANT);
  const networks = await control.networks.listNetworks(DEMO_ACTOR);
  if (!networks.some((n) => n.name === DEMO_NETWORK.name)) await control.networks.createNetwork(DEMO_ACTOR, DEMO_NETWORK);
  await attachContainers(control, opts);
  return 'seeded';
}

/**
 * Empty, or holding only what the demo puts there (its policy, physnet,
 * tenant and network): then seeding may (re)start. Anything else is the
 * user's store.
 */
async function isDemoStore(control: ControlPlane, host: string): Promise<boolean> {
  const [policy, physnets, tenants, networks] = await Promise.all([
    control.hosts.getPolicy(DEMO_ACTOR, host),
    control.networks.listPhysnets(DEMO_ACTOR),
    control.networks.listTenants(DEMO_ACTOR),
    control.networks.listNetworks(DEMO_ACTOR),
  ]);
  return (
    (policy === null || policy === DEMO_POLICY) &&
    physnets.every((p) => p.name === DEMO_PHYSNET) &&
    tenants.every((t) => t.name === DEMO_TENANT) &&
    networks.every((n) => n.name === DEMO_NETWORK.name)
  );
}

/** The scheduler places on VFs the agent has reported, so wait until the policy is applied and reported. */
async function waitForVfs(control: ControlPlane, host: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const record = await control.hosts.get(DEMO_ACTOR, host).catch(() => null);
    const pfs = record?.inventory.pfs.filter((pf) => record.physnets[pf.pciAddress] === DEMO_PHYSNET) ?? [];
    if (pfs.length > 0 && pfs.every((pf) => pf.numVfs === VFS_PER_PF)) return;
    if (Date.now() > deadline) throw new Error(`the agent of ${host} did not create the demo's VFs within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** One allocation per demo attachment that has none yet (in any state: a released one stays released). */
async function attachContainers(control: ControlPlane, opts: DemoOptions): Promise<void> {
  const nsDir = join(opts.dataDir, 'demo-netns');
  await mkdir(nsDir, { recursive: true, mode: 0o700 });
  const existing = await control.allocations.list(DEMO_ACTOR, { network: DEMO_NETWORK.name });
  for (const { workload, ifname, group } of DEMO_ATTACHMENTS) {
    const has = existing.some((a) => a.workload.name === workload && a.attachment?.kind === 'container' && a.attachment.ifname === ifname);
    if (has) continue;
    // A simulated container's network namespace is a file at its path.
    const netns = join(nsDir, workload);
    await writeFile(netns, '', { flag: 'a' });
    await control.allocations.create(DEMO_ACTOR, {
      network: DEMO_NETWORK.name,
      workload: { kind: 'container', name: workload },
      host: opts.host,
      group,
      attach: { kind: 'container', netns, ifname },
    });
  }
}
