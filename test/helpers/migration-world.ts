/**
 * The migration workflow end to end, in one process: a ControlPlane on a
 * SQLite file and REAL agents (src/agent/agent.ts over InProcessLink) on
 * simulated hosts, optionally several agents splitting one simulated kernel
 * with `--pfs` (RestrictedHost). Nothing plays an agent by hand.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../src/agent/agent.js';
import { InProcessLink, type ControllerLink } from '../../src/agent/link.js';
import type { Hypervisors } from '../../src/agent/tasks.js';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import type { Allocation, Migration } from '../../src/domain/types.js';
import { SriovHost } from '../../src/host/configurator.js';
import type { VfInfo } from '../../src/host/model.js';
import type { HostPorts } from '../../src/host/ports.js';
import { hostWithPfs } from '../../src/host/restricted.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { eventually } from './daemon.js';

export const ADMIN: Actor = { id: 'test', role: 'admin' };
const POLICY = `policies:\n  - name: fabric\n    selector: { drivers: [ice] }\n    numVfs: 4\n    physnet: fabric\n`;

export interface AgentSpec {
  /** The name it registers under. */
  name: string;
  /** The simulated kernel's state file. */
  file: string;
  /** `--pfs`: only these PFs (netdev names). */
  pfs?: string;
  hypervisors?: Hypervisors;
  /** Wraps the simulated ports (to watch or break calls). */
  wrap?: (ports: HostPorts) => HostPorts;
}

export class MigrationWorld {
  store!: Store;
  control!: ControlPlane;
  readonly agents = new Map<string, Agent>();
  readonly specs = new Map<string, AgentSpec>();
  private closed = false;

  private constructor(readonly dir: string) {}

  static async open(): Promise<MigrationWorld> {
    const w = new MigrationWorld(await mkdtemp(join(tmpdir(), 'vfleet-mig-e2e-')));
    await w.openControl();
    return w;
  }

  private async openControl(): Promise<void> {
    this.store = await openSqliteStore(join(this.dir, 'data'));
    this.control = await ControlPlane.open(this.store, { heartbeatTimeoutMs: 1_500, orphanGraceMs: 60_000 });
  }

  /** A simulated E810 kernel with `pfs` PFs (ens1f0, ens1f1, ...). */
  async kernel(name: string, pfs = 2): Promise<string> {
    const file = join(this.dir, `${name}.json`);
    await initSimHost(file, { profile: 'ice', pfs, hostname: name });
    return file;
  }

  async namespace(name: string): Promise<string> {
    await mkdir(join(this.dir, 'ns'), { recursive: true });
    const ns = join(this.dir, 'ns', name);
    await writeFile(ns, '');
    return ns;
  }

  /** The simulated host as an admin reads it (all PFs). */
  sim(file: string): SriovHost {
    return new SriovHost(createSimPorts(file));
  }

  async vf(file: string, pciAddress: string): Promise<VfInfo> {
    const inv = await this.sim(file).inventory();
    return inv.pfs.flatMap((p) => p.vfs).find((v) => v.pciAddress === pciAddress)!;
  }

  /** Starts a real agent; the first start of a host also puts its policy and waits for its VFs. */
  async startAgent(spec: AgentSpec): Promise<Agent> {
    this.specs.set(spec.name, spec);
    const sim = createSimPorts(spec.file);
    const ports: HostPorts = { ...(spec.wrap ? spec.wrap(sim) : sim), hostname: () => spec.name };
    const host = await hostWithPfs(ports, spec.pfs);
    const actor: Actor = { id: `${spec.name}-tok`, role: `agent:${spec.name}` };
    // The controller of the moment: after reopen() the same agents talk to the new one, as after a controller restart.
    const link: ControllerLink = {
      report: (...args) => new InProcessLink(this.control, actor).report(...args),
      desired: (...args) => new InProcessLink(this.control, actor).desired(...args),
    };
    const agent = new Agent(host, link, {
      heartbeatMs: 100,
      resyncMs: 400,
      hypervisors: spec.hypervisors ?? {},
      log: process.env.E2E_LOG ? (level, msg) => console.error(`[${spec.name}] ${level} ${msg}`) : undefined,
    });
    agent.start();
    this.agents.set(spec.name, agent);
    return agent;
  }

  async stopAgent(name: string): Promise<void> {
    await this.agents.get(name)?.stop();
    this.agents.delete(name);
  }

  /** Puts the VF policy on `host` and waits until its agent reports the VFs. */
  async provision(host: string): Promise<void> {
    await eventually(`${host} registered`, 10_000, async () => ((await this.control.hosts.get(ADMIN, host)) ? true : undefined));
    await this.control.hosts.putPolicy(ADMIN, host, POLICY);
    await eventually(`${host}'s VFs`, 10_000, async () => ((await this.control.hosts.get(ADMIN, host)).inventory.pfs.every((p) => p.numVfs === 4) ? true : undefined));
  }

  async network(): Promise<void> {
    await this.control.networks.createTenant(ADMIN, 'blue');
    await this.control.networks.createNetwork(ADMIN, {
      name: 'blue', tenant: 'blue', physnet: 'fabric', vlan: 100, maxTxRateMbps: 500, mtu: 9000,
      ipam: { cidr: '198.18.7.0/24', gateway: '198.18.7.1', routes: [{ dst: 'default', gw: '198.18.7.1' }] },
    });
  }

  state(id: string, want: Allocation['state'], ms = 10_000): Promise<Allocation> {
    return eventually(`allocation ${id} ${want}`, ms, async () => {
      const a = await this.control.allocations.get(ADMIN, id);
      return a.state === want ? a : undefined;
    });
  }

  /** The migration once it ended. */
  ended(id: string, ms = 15_000): Promise<Migration> {
    return eventually(`migration ${id} ended`, ms, async () => {
      const m = await this.control.migrations.get(ADMIN, id);
      return m.state === 'running' || m.state === 'rolling-back' ? undefined : m;
    });
  }

  /** Closes the controller and opens another on the same SQLite file; the agents go on, talking to the new one. */
  async reopen(): Promise<void> {
    this.control.shutdown();
    await this.store.close();
    await this.openControl();
  }

  /** Idempotent: a suite's afterEach may meet a world an earlier case already closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.agents.keys()].map((n) => this.stopAgent(n)));
    this.control.shutdown();
    await this.store.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}
