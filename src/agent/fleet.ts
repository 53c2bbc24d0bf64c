/**
 * A fleet of simulated hosts in one process (`sriovd fleet-sim`): each host
 * is a real `Agent` over a simulated kernel (sim/sim-host.ts, its state in
 * memory: files would cost more than the agents themselves) talking HTTP to
 * the controllers, so the controller sees exactly what N real agents would
 * send. The fleet only sets the scene (simulated kernels, agent tokens, node
 * policies) and counts what the agents report; it plays no agent by hand.
 */
import { SriovHost } from '../host/configurator.js';
import { SriovError } from '../host/errors.js';
import type { HostInventory } from '../host/model.js';
import type { HostPorts } from '../host/ports.js';
import { sleep } from '../host/wait.js';
import { fleetPolicy, type FleetHostSpec } from '../sim/fleet-layout.js';
import { SimHost } from '../sim/sim-host.js';
import { MemorySimState } from '../sim/state.js';
import { Agent } from './agent.js';
import { HttpLink, type ControllerLink } from './link.js';
import type { Log } from './reconciler.js';

export interface FleetOptions {
  hosts: FleetHostSpec[];
  /** Controller URLs; host n talks to servers[n mod count], so a fleet loads every controller. */
  servers: string[];
  /** An admin token: the fleet makes each host's agent token and puts its node policy. */
  adminToken: string;
  physnet?: string;
  heartbeatMs?: number;
  resyncMs?: number;
  /** Pause between two agents' starts, so a fleet does not register in one burst. */
  staggerMs?: number;
  log?: Log;
}

export interface FleetProgress {
  hosts: number;
  started: number;
  /** Hosts whose agent has reported at least once. */
  reporting: number;
  /** VFs in the hosts' last reports, summed. */
  vfs: number;
}

/** Setup calls in flight at once: enough to hide latency, few enough not to crowd the agents' own calls. */
const SETUP_CONCURRENCY = 4;

export class Fleet {
  private readonly agents: Agent[] = [];
  /** Per host: VFs in its last report, or -1 before its first. One number per host keeps the fleet small. */
  private readonly reported: Int32Array;
  private stopping = false;

  constructor(private readonly o: FleetOptions) {
    if (o.servers.length === 0) throw new SriovError('INVALID_ARGUMENT', 'fleet-sim needs at least one --server URL');
    this.reported = new Int32Array(o.hosts.length).fill(-1);
  }

  /** Sets up and starts every host, staggered; resolves once the last agent has started (not registered). */
  async start(): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (!this.stopping && next < this.o.hosts.length) {
        const i = next++;
        await this.startHost(i);
        if (this.o.staggerMs) await sleep(this.o.staggerMs * SETUP_CONCURRENCY);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SETUP_CONCURRENCY, this.o.hosts.length) }, worker));
  }

  progress(): FleetProgress {
    let reporting = 0;
    let vfs = 0;
    for (const n of this.reported) {
      if (n < 0) continue;
      reporting++;
      vfs += n;
    }
    return { hosts: this.o.hosts.length, started: this.agents.length, reporting, vfs };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.agents.map((a) => a.stop()));
  }

  private async startHost(i: number): Promise<void> {
    const spec = this.o.hosts[i]!;
    const server = this.o.servers[i % this.o.servers.length]!;
    const kernel = new SimHost(new MemorySimState({ profile: spec.profile, pfs: spec.pfs, numaNodes: spec.numaNodes, hostname: spec.name })).ports;
    await this.boot(kernel, spec);
    const { token } = (await this.admin(server, 'POST', '/v1/tokens', { role: `agent:${spec.name}` })) as { token: string };
    if (spec.vfsPerPf > 0) await this.admin(server, 'PUT', `/v1/hosts/${spec.name}/policy`, { document: fleetPolicy(spec, this.o.physnet ?? 'fleet') });
    if (this.stopping) return;
    // Every controller, starting from this host's own: a simulated agent fails over as a real one does.
    const servers = [...this.o.servers.slice(i % this.o.servers.length), ...this.o.servers.slice(0, i % this.o.servers.length)];
    const agent = new Agent(new SriovHost(kernel), this.counted(i, new HttpLink(servers, token)), {
      heartbeatMs: this.o.heartbeatMs,
      resyncMs: this.o.resyncMs,
      log: this.o.log && ((level, message) => this.o.log!(level, `${spec.name}: ${message}`)),
    });
    agent.start();
    this.agents.push(agent);
  }

  /**
   * The host as it comes up after a reboot with its VFs already made (udev,
   * or a previous agent's work), as a fleet's hosts mostly are: the agent then
   * checks them against the node policy rather than making each one, which
   * keeps a thousand hosts' start to minutes of CPU instead of an hour.
   */
  private async boot(kernel: HostPorts, spec: FleetHostSpec): Promise<void> {
    if (spec.vfsPerPf === 0) return;
    for (const pf of await kernel.sysfs.listSriovPfs()) await kernel.sysfs.writeNumVfs(pf, spec.vfsPerPf);
  }

  /**
   * The link, counting the VFs of every inventory that goes through it. It
   * inherits from the link rather than wrapping each method, so whatever else
   * a link grows passes straight through.
   */
  private counted(i: number, link: ControllerLink): ControllerLink {
    const reported = this.reported;
    const counted = Object.create(link) as ControllerLink;
    counted.report = async (...args: Parameters<ControllerLink['report']>) => {
      await link.report(...args);
      const inventory = args[0] as HostInventory | null | undefined;
      // A liveness-only report carries no inventory: the count stands.
      if (inventory?.pfs) reported[i] = inventory.pfs.reduce((n, pf) => n + pf.vfs.length, 0);
      else if (reported[i]! < 0) reported[i] = 0;
    };
    return counted;
  }

  private async admin(server: string, method: string, path: string, body: unknown): Promise<unknown> {
    const res = await fetch(server.replace(/\/+$/, '') + path, {
      method,
      headers: { authorization: `Bearer ${this.o.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    }).catch((err: unknown) => {
      const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      throw new SriovError('TRY_AGAIN', `fleet-sim: the controller at ${server} cannot be reached (${cause}); start it first, or check --server`, { object: server, cause: err });
    });
    const payload = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    if (!res.ok) {
      const e = payload?.error;
      throw new SriovError((e?.code as never) ?? 'HOST_ERROR', `fleet-sim: ${method} ${path}: controller answered ${res.status}: ${e?.message ?? res.statusText}`, { object: path });
    }
    return payload;
  }
}
