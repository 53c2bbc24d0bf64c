import { Option, type Command } from 'commander';
import { parseName, type NetworkChange, type NetworkInput } from '../../controller/networks.js';
import type { DeviceType, Network } from '../../domain/types.js';
import { parseMtu, parseOnOff, parseQos, parseRateMbps, parseVlan, parseVlanProto } from '../../host/validate.js';
import { invalid } from '../../host/errors.js';
import type { CliContext } from '../context.js';
import { asList, onOff, table } from '../output.js';
import { pathOf } from '../remote/client.js';
import { collect } from '../remote/options.js';

interface CreateOptions {
  tenant: string;
  physnet: string;
  vlan?: string;
  qos?: string;
  vlanProto?: string;
  mtu?: string;
  maxTxRate?: string;
  minTxRate?: string;
  trust?: boolean;
  spoofchk: boolean;
  deviceType?: DeviceType;
  ipPool?: string;
  ipRange?: string;
  gateway?: string;
  route?: string[];
}

export function registerNetworkCommands(program: Command, cli: CliContext): void {
  const network = program.command('network').description("tenant networks: a VLAN on a physnet, and the VF settings that go with it (remote)");

  network
    .command('create <name>')
    .description('create a network')
    .requiredOption('--tenant <T>', 'owning tenant')
    .requiredOption('--physnet <P>', 'physical network')
    .option('--vlan <V>', "VLAN id, 1-4094 (admin, operator; 0, untagged, admin only); default: the next free one of the physnet's tenant VLANs")
    .option('--qos <Q>', '802.1p priority 0-7')
    .option('--vlan-proto <P>', '802.1Q or 802.1ad')
    .option('--mtu <M>', 'MTU of the VFs')
    .option('--max-tx-rate <MBPS>', 'per-VF rate limit, 0 for none')
    .option('--min-tx-rate <MBPS>', 'per-VF bandwidth guarantee, 0 for none')
    .option('--trust', 'let VFs change their MAC and go promiscuous (admin-only)')
    .option('--no-spoofchk', 'turn source MAC anti-spoofing off (admin-only)')
    .option('--ip-pool <CIDR>', 'IPv4 subnet that container attachments get addresses from')
    .option('--ip-range <FIRST-LAST>', 'the part of the pool handed out (default: all of it)')
    .option('--gateway <IP>', "the pool's gateway (never handed out)")
    .option('--route <DST[@GW]>', 'a route for attached containers, e.g. default@198.18.0.1 (repeatable)', collect)
    .addOption(new Option('--device-type <T>', 'what the VFs are bound to').choices(['netdevice', 'vfio-pci']))
    .action(async (name: string, opts: CreateOptions) => {
      const body = networkInput(name, opts);
      cli.emit(await (await cli.api()).post<Network>('/v1/networks', body), networkTable);
    });

  network
    .command('list')
    .description('list networks (a tenant token sees only its own)')
    .action(async () => cli.emit(await (await cli.api()).all<Network>('/v1/networks'), networkTable));

  network
    .command('show <name>')
    .description('one network')
    .action(async (name: string) => cli.emit(await (await cli.api()).get<Network>(pathOf('/v1/networks', name)), networkTable));

  network
    .command('set <name>')
    .description('change a network; settings not given keep their value. While allocations hold its VFs, physnet, VLAN, protocol, device type, min rate and pool cannot change')
    .option('--physnet <P>', 'physical network')
    .option('--vlan <V>', 'VLAN id (admin, operator)')
    .option('--qos <Q>', '802.1p priority 0-7')
    .option('--vlan-proto <P>', '802.1Q or 802.1ad')
    .option('--mtu <M>', 'MTU of the VFs; none to leave it to the host')
    .option('--max-tx-rate <MBPS>', 'per-VF rate limit, 0 for none')
    .option('--min-tx-rate <MBPS>', 'per-VF bandwidth guarantee, 0 for none')
    .option('--trust <on|off>', 'let VFs change their MAC and go promiscuous (on: admin-only)')
    .option('--spoofchk <on|off>', 'source MAC anti-spoofing (off: admin-only)')
    .option('--ip-pool <CIDR>', 'IPv4 subnet that container attachments get addresses from; none removes the pool')
    .option('--ip-range <FIRST-LAST>', 'with --ip-pool: the part of the pool handed out')
    .option('--gateway <IP>', "with --ip-pool: the pool's gateway")
    .option('--route <DST[@GW]>', 'with --ip-pool: a route for attached containers (repeatable)', collect)
    .addOption(new Option('--device-type <T>', 'what the VFs are bound to').choices(['netdevice', 'vfio-pci']))
    .action(async (name: string, opts: SetOptions) => {
      const body = networkChange(opts);
      if (Object.keys(body).length === 0) throw invalid('network set needs at least one setting to change (see --help)');
      cli.emit(await (await cli.api()).put<Network>(pathOf('/v1/networks', parseName(name, 'network')), body), networkTable);
    });

  network
    .command('delete <name>')
    .description('delete a network that has no allocations left')
    .action(async (name: string) => {
      await (await cli.api()).delete(pathOf('/v1/networks', name));
      cli.deleted(`network/${name}`);
    });
}

/** Checked here for quick feedback; the controller checks again, and alone knows tenants, physnets and roles. */
function networkInput(name: string, o: CreateOptions): NetworkInput {
  const optional = <T>(v: string | undefined, parse: (s: string) => T) => (v === undefined ? undefined : parse(v));
  return {
    name: parseName(name, 'network'),
    tenant: parseName(o.tenant, 'tenant'),
    physnet: parseName(o.physnet, 'physnet'),
    vlan: optional(o.vlan, parseVlan),
    qos: optional(o.qos, parseQos),
    vlanProto: optional(o.vlanProto, parseVlanProto),
    mtu: optional(o.mtu, parseMtu),
    maxTxRateMbps: optional(o.maxTxRate, (v) => parseRateMbps(v, 'max tx rate')),
    minTxRateMbps: optional(o.minTxRate, (v) => parseRateMbps(v, 'min tx rate')),
    trust: o.trust ?? false,
    spoofChk: o.spoofchk,
    deviceType: o.deviceType,
    ipam: ipamInput(o),
  };
}

type SetOptions = Omit<CreateOptions, 'tenant' | 'physnet' | 'trust' | 'spoofchk'> & { physnet?: string; trust?: string; spoofchk?: string };

/** Only the settings given, checked here for quick feedback. */
function networkChange(o: SetOptions): NetworkChange {
  const optional = <T>(v: string | undefined, parse: (s: string) => T) => (v === undefined ? undefined : parse(v));
  const change: NetworkChange = {
    physnet: optional(o.physnet, (v) => parseName(v, 'physnet')),
    vlan: optional(o.vlan, parseVlan),
    qos: optional(o.qos, parseQos),
    vlanProto: optional(o.vlanProto, parseVlanProto),
    mtu: optional(o.mtu, (v) => (v === 'none' ? null : parseMtu(v))),
    maxTxRateMbps: optional(o.maxTxRate, (v) => parseRateMbps(v, 'max tx rate')),
    minTxRateMbps: optional(o.minTxRate, (v) => parseRateMbps(v, 'min tx rate')),
    trust: optional(o.trust, (v) => parseOnOff(v, '--trust')),
    spoofChk: optional(o.spoofchk, (v) => parseOnOff(v, '--spoofchk')),
    deviceType: o.deviceType,
    ipam: o.ipPool === 'none' ? null : ipamInput(o),
  };
  return Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) as NetworkChange;
}

function ipamInput(o: Pick<CreateOptions, 'ipPool' | 'ipRange' | 'gateway' | 'route'>): NetworkInput['ipam'] {
  if (o.ipPool === undefined) {
    if (o.ipRange || o.gateway || o.route) throw invalid('--ip-range, --gateway and --route need --ip-pool');
    return undefined;
  }
  const [rangeStart, rangeEnd, extra] = o.ipRange?.split('-') ?? [];
  if (o.ipRange !== undefined && (!rangeStart || !rangeEnd || extra !== undefined)) throw invalid(`--ip-range must be FIRST-LAST, got "${o.ipRange}"`);
  const routes = (o.route ?? []).map((r) => {
    const [dst, gw] = r.split('@');
    return gw === undefined ? { dst: dst! } : { dst: dst!, gw };
  });
  return { cidr: o.ipPool, rangeStart, rangeEnd, gateway: o.gateway, routes };
}

function networkTable(networks: Network | Network[]): string {
  const rows = asList(networks).map((n) => [
    n.name,
    n.tenant,
    n.physnet,
    n.vlanProto === '802.1ad' ? `${n.vlan} 802.1ad` : n.vlan,
    n.qos,
    n.mtu,
    `${n.minTxRateMbps}/${n.maxTxRateMbps}`,
    onOff(n.spoofChk),
    onOff(n.trust),
    n.deviceType,
    n.ipam ? `${n.ipam.rangeStart ?? ''}${n.ipam.rangeStart ? '-' : ''}${n.ipam.rangeEnd ?? ''} ${n.ipam.cidr}`.trim() : null,
  ]);
  return table(['NAME', 'TENANT', 'PHYSNET', 'VLAN', 'QOS', 'MTU', 'MIN/MAX MBPS', 'SPOOFCHK', 'TRUST', 'DEVICE TYPE', 'IP POOL'], rows);
}
