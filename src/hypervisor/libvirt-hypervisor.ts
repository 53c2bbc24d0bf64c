/**
 * The libvirt adapter: `virsh` with argument vectors (vm/virsh.ts), on this
 * host's libvirtd (`--libvirt-uri`). The VF is an `<interface
 * type='hostdev'>` (vm/libvirt.ts) whose `<teaming type='transient'>` names
 * its virtio standby: libvirt unplugs it itself before a migration, and
 * leaves re-plugging on the destination to the management application.
 *
 * libvirt keeps a device alias only when it starts with `ua-` (others are
 * replaced by its own), so device ids here must: `ua-sriov-<8 chars>` and
 * `ua-backup-<8 chars>`, as vm/libvirt.ts names them.
 */
import { SriovError, invalid } from '../host/errors.js';
import { sleep } from '../host/wait.js';
import { vfInterfaceXml } from '../vm/libvirt.js';
import { pciLocation } from '../vm/nic.js';
import { attachToDomain, runVirsh, virshError } from '../vm/virsh.js';
import type { Hypervisor, MigrateRequest, MigrateResult, PlugRequest, UnplugRequest } from './hypervisor.js';
import { parseLibvirtDestination, parseLibvirtUri, parseMigrateRequest, parsePlugRequest, parseUnplugRequest } from './validate.js';

export interface LibvirtHypervisorOptions {
  /** This host's libvirt (`--libvirt-uri`, default qemu:///system). */
  connect: string;
  /** A live migration still running after this long is left to fail (virsh is stopped, which aborts it). */
  migrateTimeoutMs?: number;
  /** How long the guest has to release a device after detach-device-alias. */
  unplugTimeoutMs?: number;
}

function userAlias(id: string, what: string): string {
  if (!id.startsWith('ua-')) {
    throw invalid(`${what} ${JSON.stringify(id)} is not a libvirt user alias: libvirt keeps only aliases that start with ua- (vm/libvirt.ts names them ua-sriov-<id> and ua-backup-<id>)`, id);
  }
  return id;
}

/** `<interface>` elements of a domain's live XML, with the alias and MAC each carries. */
function interfaces(xml: string): Array<{ alias: string | null; mac: string | null }> {
  return [...xml.matchAll(/<interface\b[\s\S]*?<\/interface>/g)].map(([block]) => ({
    alias: /<alias name=['"]([^'"]+)['"]/.exec(block)?.[1] ?? null,
    mac: /<mac address=['"]([^'"]+)['"]/.exec(block)?.[1]?.toLowerCase() ?? null,
  }));
}

export class LibvirtHypervisor implements Hypervisor {
  readonly kind = 'libvirt' as const;
  private readonly migrateTimeoutMs: number;
  private readonly unplugTimeoutMs: number;

  constructor(private readonly opts: LibvirtHypervisorOptions) {
    parseLibvirtUri(opts.connect, '--libvirt-uri');
    this.migrateTimeoutMs = opts.migrateTimeoutMs ?? 600_000;
    this.unplugTimeoutMs = opts.unplugTimeoutMs ?? 60_000;
  }

  async migrate(request: MigrateRequest, progress: (status: string) => void = () => {}): Promise<MigrateResult> {
    const req = parseMigrateRequest(request, parseLibvirtDestination);
    userAlias(req.sourceDevice, 'source device');
    const statuses: string[] = [];
    const see = (s: string) => (statuses.push(s), progress(s));
    if (!(await this.runsHere(req.vm))) {
      // Gone from here: migrated already (an agent restart after it finished), or never here.
      if (await this.runsOn(req.destination, req.vm)) return { statuses: ['completed'], downtimeMs: null, totalMs: null, ...(await this.completedJob(req)) };
      throw new SriovError('NOT_FOUND', `VM ${req.vm} runs neither on this host (${this.opts.connect}) nor on ${req.destination}`, { object: req.vm, nothingChanged: true });
    }
    see('active');
    const args = ['migrate', '--live', '--persistent', '--undefinesource', '--domain', req.vm, '--desturi', req.destination];
    const res = await runVirsh(args, { connect: this.opts.connect, timeoutMs: this.migrateTimeoutMs });
    if (res.code !== 0) {
      const err = virshError(`migrate ${req.vm} to ${req.destination}`, res, req.vm);
      throw new SriovError(err.code === 'NOT_FOUND' ? 'NOT_FOUND' : 'HOST_ERROR', `${err.message}; the VM still runs on this host`, { object: req.vm, data: { statuses } });
    }
    see('completed');
    return { statuses, downtimeMs: null, totalMs: null, ...(await this.completedJob(req)) };
  }

  async plug(request: PlugRequest): Promise<void> {
    const req = parsePlugRequest(request);
    userAlias(req.device, 'device');
    const present = interfaces(await this.liveXml(req.vm));
    if (present.some((i) => i.alias === req.device)) return; // plugged before: done
    if (req.failoverPairId) {
      const standby = present.find((i) => i.alias === userAlias(req.failoverPairId!, 'failover standby'));
      if (!standby) throw new SriovError('NOT_FOUND', `VM ${req.vm} has no interface ${req.failoverPairId} to pair VF ${req.pciAddress} with; nothing was plugged`, { object: req.vm, nothingChanged: true });
      if (standby.mac !== req.mac) {
        throw new SriovError('CONFLICT', `VM ${req.vm}'s standby ${req.failoverPairId} has MAC ${standby.mac}, not the VF's ${req.mac}: net_failover pairs by MAC; nothing was plugged`, { object: req.vm, nothingChanged: true });
      }
    }
    const xml = vfInterfaceXml({ pci: pciLocation(req.pciAddress), mac: req.mac, vlan: req.vlan ?? 0, alias: req.device, persistent: req.failoverPairId });
    await attachToDomain(req.vm, xml, { live: true, config: false, connect: this.opts.connect });
  }

  async unplug(request: UnplugRequest): Promise<void> {
    const req = parseUnplugRequest(request);
    userAlias(req.device, 'device');
    if (!(await this.hasAlias(req.vm, req.device))) return; // gone already: done
    // detach-device-alias only asks the guest; the device is gone when the live XML no longer has it.
    const res = await runVirsh(['detach-device-alias', '--domain', req.vm, '--alias', req.device, '--live'], { connect: this.opts.connect });
    if (res.code !== 0 && (await this.hasAlias(req.vm, req.device))) throw virshError(`detach-device-alias ${req.device} from ${req.vm}`, res, req.vm);
    const deadline = Date.now() + this.unplugTimeoutMs;
    while (await this.hasAlias(req.vm, req.device)) {
      if (Date.now() >= deadline) {
        throw new SriovError('TIMEOUT', `VM ${req.vm} did not release ${req.device} within ${this.unplugTimeoutMs / 1000} s of detach-device-alias: a PCI unplug needs the guest's consent`, { object: req.vm });
      }
      await sleep(200);
    }
  }

  private async liveXml(vm: string): Promise<string> {
    const res = await runVirsh(['dumpxml', '--domain', vm], { connect: this.opts.connect });
    if (res.code !== 0) throw virshError(`dumpxml ${vm}`, res, vm);
    return res.stdout;
  }

  private async hasAlias(vm: string, alias: string): Promise<boolean> {
    return interfaces(await this.liveXml(vm)).some((i) => i.alias === alias);
  }

  private runsHere(vm: string): Promise<boolean> {
    return this.runsOn(this.opts.connect, vm);
  }

  /** `virsh domstate`: running or paused (a live migration pauses it last) counts; not defined there is false. */
  private async runsOn(connect: string, vm: string): Promise<boolean> {
    const res = await runVirsh(['domstate', '--domain', vm], { connect });
    if (res.code === 0) return /^(running|paused)/.test(res.stdout.trim());
    const err = virshError(`domstate ${vm}`, res, vm);
    if (err.code === 'NOT_FOUND') return false;
    throw err;
  }

  /** The finished job's figures as the destination's libvirt keeps them (`domjobinfo --completed`); none if it has none. */
  private async completedJob(req: MigrateRequest): Promise<Partial<MigrateResult>> {
    const res = await runVirsh(['domjobinfo', '--domain', req.vm, '--completed'], { connect: req.destination }).catch(() => null);
    if (!res || res.code !== 0) return {};
    const ms = (label: string) => {
      const m = new RegExp(`^${label}:\\s+(\\d+)\\s+ms`, 'm').exec(res.stdout);
      return m ? Number(m[1]) : null;
    };
    return { downtimeMs: ms('Downtime'), totalMs: ms('Time elapsed') };
  }
}
