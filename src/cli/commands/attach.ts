/**
 * `attach container|vm` and `detach`: an allocation whose VF the host's
 * agent hands to a container namespace or binds for a VM, and gives back.
 */
import { Option, type Command } from 'commander';
import type { AllocationInput } from '../../controller/allocations.js';
import { parseName } from '../../controller/networks.js';
import type { VmConfig } from '../../controller/vm-config.js';
import type { Allocation } from '../../domain/types.js';
import { invalid } from '../../host/errors.js';
import { parseHostName, parseIfName, parseInteger, parseMac, parseNetnsPath } from '../../host/validate.js';
import type { NumaPolicy } from '../../scheduler/index.js';
import { attachToDomain } from '../../vm/virsh.js';
import type { CliContext } from '../context.js';
import { pathOf } from '../remote/client.js';
import { collect } from '../remote/options.js';
import { allocationTable, parseTimeout, settle, waitOptions, type WaitOptions } from './alloc.js';

interface PlacementFlags extends WaitOptions {
  network: string;
  workload?: string;
  numa?: string;
  numaPolicy?: NumaPolicy;
  group?: string;
}

interface ContainerFlags extends PlacementFlags {
  netns: string;
  ifname: string;
  ip?: string[];
  mac?: string;
}

interface VmFlags extends PlacementFlags {
  vm: string;
  failover?: boolean;
  apply?: boolean;
}

const placementOptions = (cmd: Command) =>
  cmd
    .requiredOption('--network <N>', 'network to attach to')
    .option('--workload <NAME>', 'workload name (default: the namespace or VM name)')
    .option('--numa <N>', 'NUMA node the VF should be local to')
    .addOption(new Option('--numa-policy <P>', 'whether --numa must hold').choices(['required', 'preferred']))
    .option('--group <G>', "redundancy group: the workload's VFs in it go to different PFs");

function placement(o: PlacementFlags, host: string | undefined): Omit<AllocationInput, 'workload' | 'attach'> {
  if (o.numaPolicy && o.numa === undefined) throw invalid('--numa-policy needs --numa');
  return {
    network: parseName(o.network, 'network'),
    numaNode: o.numa === undefined ? undefined : parseInteger(o.numa, 'NUMA node', 0, 63),
    numaPolicy: o.numaPolicy,
    group: o.group,
    host: host === undefined ? undefined : parseHostName(host),
  };
}

/** The allocation as `attach container -o json` prints it: the attachment's fields at the top. */
function containerView(a: Allocation) {
  const at = a.attachment?.kind === 'container' ? a.attachment : null;
  return { ...a, netns: at?.netns ?? null, ifname: at?.ifname ?? null, ips: at?.ips ?? [] };
}

function vmTable(v: Allocation & VmConfig): string {
  const standby = v.standbyXml ? `\n<!-- virtio standby (failover) -->\n${v.standbyXml}\n` : '';
  return `${allocationTable(v)}\n<!-- libvirt -->\n${v.libvirtXml}\n${standby}\n# QEMU\n${v.qemuArgs.join(' ')}\n`;
}

export function registerAttachCommands(program: Command, cli: CliContext): void {
  const attach = program.command('attach').description('hand a VF to a container or a VM (remote)');

  waitOptions(placementOptions(attach.command('container')), 'attached')
    .description("move a VF into a container's network namespace, configured as the network says")
    .requiredOption('--netns <PATH>', 'network namespace path (/var/run/netns/NAME, /proc/PID/ns/net)')
    .requiredOption('--ifname <IF>', 'interface name inside the namespace')
    .option('--ip <CIDR>', "an address (repeatable; default: the next one from the network's pool)", collect)
    .option('--mac <M>', 'MAC address instead of one from the pool')
    .action(async (o: ContainerFlags) => {
      const netns = parseNetnsPath(o.netns);
      const workload = o.workload ?? netns.split('/').filter(Boolean).join('-').slice(-253);
      const body: AllocationInput = {
        ...placement(o, cli.opts.host),
        workload: { kind: 'container', name: workload },
        mac: o.mac === undefined ? undefined : parseMac(o.mac),
        attach: { kind: 'container', netns, ifname: parseIfName(o.ifname), ips: o.ip },
      };
      const created = await (await cli.api()).post<Allocation>('/v1/allocations', body);
      await settle(cli, created, ['pending', 'configured'], parseTimeout(o), containerView, (v) => allocationTable(v));
    });

  waitOptions(placementOptions(attach.command('vm')), 'bound to vfio-pci')
    .description('bind a VF to vfio-pci for a VM; prints the libvirt interface XML and QEMU arguments')
    .requiredOption('--vm <NAME>', 'libvirt domain name')
    .option('--failover', 'also print a virtio standby with the same MAC (teaming), for live migration')
    .option('--apply', 'attach the XML to the domain with virsh on this machine')
    .action(async (o: VmFlags) => {
      const body: AllocationInput = {
        ...placement(o, cli.opts.host),
        workload: { kind: 'vm', name: o.workload ?? o.vm },
        attach: { kind: 'vm', vm: o.vm, failover: o.failover === true },
      };
      const api = await cli.api();
      const created = await api.post<Allocation>('/v1/allocations', body);
      const view = async (a: Allocation) => ({ ...a, ...(await api.get<VmConfig>(pathOf('/v1/allocations', a.id) + '/vm-config')) });
      const done = await settle(cli, created, ['pending', 'configured'], parseTimeout(o), view, vmTable);
      if (o.apply) await applyToDomain(o.vm, await view(done));
    });

  waitOptions(program.command('detach <allocation>'), 'released')
    .description('give the VF back (namespace → host, vfio-pci → kernel driver), scrub every field, release it; clears a failed allocation')
    .action(async (id: string, o: WaitOptions) => {
      const releasing = await (await cli.api()).delete<Allocation>(pathOf('/v1/allocations', id));
      await settle(cli, releasing, ['releasing'], parseTimeout(o));
    });
}

/** `virsh attach-device DOMAIN FILE --live --config`, the standby first so the guest pairs them. */
async function applyToDomain(vm: string, config: VmConfig): Promise<void> {
  if (config.standbyXml) await attachToDomain(vm, config.standbyXml, { live: true, config: true });
  await attachToDomain(vm, config.libvirtXml, { live: true, config: true });
}
