/**
 * A `virsh` for tests, run as `node fake-virsh.js ARGS` through a `virsh`
 * script on PATH: the commands the libvirt adapter uses, with libvirt's
 * outputs and error lines, on domains kept in the JSON file named by
 * $VFLEET_FAKE_VIRSH (one set of domains per connection URI). Like libvirt:
 * a transient (failover) hostdev is unplugged before a migration and not
 * plugged on the destination; an alias without `ua-` is replaced by
 * libvirt's own; detach only asks the guest.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface FakeInterface {
  type: 'hostdev' | 'network';
  mac: string;
  alias: string;
  /** hostdev: the VF's PCI address. */
  pci?: string;
  /** hostdev with `<teaming type='transient' persistent=...>`. */
  persistent?: string;
  vlan?: number;
  /** The guest was asked to release it and has not yet. */
  detaching?: boolean;
}

export interface FakeVirshState {
  /** URI → domain name → domain. */
  hosts: Record<string, Record<string, { state: 'running' | 'shut off'; interfaces: FakeInterface[] }>>;
  /** The guest answers unplug requests. */
  guestUnplugs: boolean;
  failNextMigration: string | null;
  migrations: number;
  /** URI → domain → the last completed job's figures there. */
  jobs: Record<string, Record<string, { elapsedMs: number; downtimeMs: number }>>;
}

class VirshExit extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'));
  }
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function interfaceXml(i: FakeInterface): string {
  const lines = [`    <interface type='${i.type}'${i.type === 'hostdev' ? " managed='yes'" : ''}>`, `      <mac address='${i.mac}'/>`];
  if (i.pci) {
    const [domain, bus, slot, fn] = i.pci.split(/[:.]/);
    lines.push(`      <source>`, `        <address type='pci' domain='0x${domain}' bus='0x${bus}' slot='0x${slot}' function='0x${fn}'/>`, `      </source>`);
  } else lines.push(`      <source network='default'/>`, `      <model type='virtio'/>`);
  if (i.vlan) lines.push(`      <vlan>`, `        <tag id='${i.vlan}'/>`, `      </vlan>`);
  if (i.persistent) lines.push(`      <teaming type='transient' persistent='${i.persistent}'/>`);
  else if (i.type === 'network') lines.push(`      <teaming type='persistent'/>`);
  lines.push(`      <alias name='${i.alias}'/>`, `    </interface>`);
  return lines.join('\n');
}

function main(argv: string[]): string {
  const file = process.env.VFLEET_FAKE_VIRSH!;
  const state = JSON.parse(readFileSync(file, 'utf8')) as FakeVirshState;
  let uri = 'qemu:///system';
  if (argv[0] === '-c') {
    uri = argv[1]!;
    argv = argv.slice(2);
  }
  const [command, ...args] = argv;
  const save = () => writeFileSync(file, JSON.stringify(state));
  const host = state.hosts[uri];
  if (!host) throw new VirshExit(['failed to connect to the hypervisor', `Cannot recv data: ssh: Could not resolve hostname: Name or service not known: Connection reset by peer`]);
  const name = option(args, '--domain') ?? '';
  const domain = host[name];
  const need = () => {
    if (!domain) throw new VirshExit([`failed to get domain '${name}'`]);
    return domain;
  };
  switch (command) {
    case 'domstate':
      return `${need().state}\n\n`;
    case 'dominfo':
      return `Id:             1\nName:           ${name}\nState:          ${need().state}\n`;
    case 'dumpxml': {
      const d = need();
      return [`<domain type='kvm' id='1'>`, `  <name>${name}</name>`, `  <devices>`, ...d.interfaces.map(interfaceXml), `  </devices>`, `</domain>`, ''].join('\n');
    }
    case 'attach-device': {
      const d = need();
      const path = option(args, '--file')!;
      const xml = readFileSync(path, 'utf8');
      const attr = (re: RegExp) => re.exec(xml)?.[1];
      const pci = ['domain', 'bus', 'slot', 'function'].map((k) => attr(new RegExp(`<address [^>]*${k}=['"]0x([0-9a-f]+)['"]`))!);
      const address = `${pci[0]}:${pci[1]}:${pci[2]}.${pci[3]}`;
      let alias = attr(/<alias name=['"]([^'"]+)['"]/) ?? '';
      if (!alias.startsWith('ua-')) alias = `hostdev${d.interfaces.length}`;
      if (d.interfaces.some((i) => i.alias === alias)) throw new VirshExit([`Failed to attach device from ${path}`, `XML error: non-unique alias detected: ${alias}`]);
      for (const [other, od] of Object.entries(host)) {
        if (od.interfaces.some((i) => i.pci === address)) throw new VirshExit([`Failed to attach device from ${path}`, `Requested operation is not valid: PCI device ${address} is in use by driver QEMU, domain ${other}`]);
      }
      const vlan = attr(/<tag id=['"](\d+)['"]/);
      d.interfaces.push({ type: 'hostdev', mac: attr(/<mac address=['"]([^'"]+)['"]/)!, alias, pci: address, ...(vlan ? { vlan: Number(vlan) } : {}), ...(attr(/persistent=['"]([^'"]+)['"]/) ? { persistent: attr(/persistent=['"]([^'"]+)['"]/) } : {}) });
      save();
      return 'Device attached successfully\n\n';
    }
    case 'detach-device-alias': {
      const d = need();
      const alias = option(args, '--alias')!;
      const i = d.interfaces.find((x) => x.alias === alias);
      if (!i) throw new VirshExit([`Failed to detach device with alias ${alias}`, `device not found: no device found with alias ${alias}`]);
      if (state.guestUnplugs) d.interfaces = d.interfaces.filter((x) => x !== i);
      else i.detaching = true;
      save();
      return 'Device detach request sent successfully\n\n';
    }
    case 'migrate': {
      const d = need();
      const dest = option(args, '--desturi')!;
      if (!args.includes('--live')) throw new VirshExit(['fake virsh: this test only does live migrations']);
      const target = state.hosts[dest];
      if (!target) throw new VirshExit([`operation failed: Failed to connect to remote libvirt URI ${dest}: Cannot recv data: ssh: Could not resolve hostname: Name or service not known`]);
      if (state.failNextMigration) {
        const why = state.failNextMigration;
        state.failNextMigration = null;
        save();
        throw new VirshExit([`operation failed: job 'migration out' failed: ${why}`]);
      }
      if (!state.guestUnplugs && d.interfaces.some((i) => i.persistent)) throw new VirshExit(['operation failed: job \'migration out\' failed: guest did not unplug the failover device']);
      // libvirt (through QEMU's failover) unplugs the transient hostdev first; the destination gets the rest.
      target[name] = { state: 'running', interfaces: d.interfaces.filter((i) => !i.persistent) };
      if (args.includes('--undefinesource')) delete host[name];
      else d.state = 'shut off';
      state.migrations++;
      (state.jobs[dest] ??= {})[name] = { elapsedMs: 2700, downtimeMs: 78 };
      save();
      return '\n';
    }
    case 'domjobinfo': {
      need();
      const job = state.jobs[uri]?.[name];
      if (!args.includes('--completed') || !job) return 'Job type:         None        \n\n';
      return `Job type:         Completed   \nOperation:        Incoming migration\nTime elapsed:     ${job.elapsedMs}         ms\nDowntime:         ${job.downtimeMs}           ms\n\n`;
    }
    default:
      throw new VirshExit([`unknown command: '${command}'`]);
  }
}

try {
  process.stdout.write(main(process.argv.slice(2)));
} catch (e) {
  if (!(e instanceof VirshExit)) throw e;
  process.stderr.write(e.lines.map((l) => `error: ${l}\n`).join(''));
  process.exit(1);
}
