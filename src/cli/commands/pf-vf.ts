import type { Command } from 'commander';
import { invalid } from '../../host/errors.js';
import type { VfSettings } from '../../host/model.js';
import { parseInteger, parseMtu, parseOnOff, parseVfSettings } from '../../host/validate.js';
import type { CliContext } from '../context.js';
import { terminalProgress } from '../local-host.js';
import { pfShowTable } from '../pf-show.js';
import { registerPfDrainCommands } from './pf-drain.js';

function report(cli: CliContext, what: string, changed: boolean | number): void {
  const count = typeof changed === 'number' ? changed : changed ? 1 : 0;
  cli.emit({ changed: count > 0, changes: count }, () => (count ? `${what}\n` : 'no changes\n'));
}

export function registerPfCommands(program: Command, cli: CliContext): void {
  const pf = program.command('pf').description('physical functions (set: this host; drain, undrain: the controller)');
  registerPfDrainCommands(pf, cli);
  pf.command('show <pf>')
    .description('show a PF of this host and its VFs; in switchdev mode their representors, rate parents and the rate nodes')
    .action(async (name: string) => {
      cli.emit(await cli.localHost().pf(name), pfShowTable);
    });
  pf.command('set <pf>')
    .description('set the VF count, driver autoprobe or MTU of a PF (netdev name or PCI address)')
    .option('--num-vfs <N>', 'number of VFs (changes go through 0)')
    .option('--autoprobe <on|off>', 'bind new VFs to a driver automatically')
    .option('--mtu <N>', 'PF MTU')
    .action(async (pf: string, opts: { numVfs?: string; autoprobe?: string; mtu?: string }) => {
      const numVfs = opts.numVfs === undefined ? undefined : parseInteger(opts.numVfs, 'VF count', 0, 4096);
      const autoprobe = opts.autoprobe === undefined ? undefined : parseOnOff(opts.autoprobe, 'autoprobe');
      const mtu = opts.mtu === undefined ? undefined : parseMtu(opts.mtu);
      if (numVfs === undefined && autoprobe === undefined && mtu === undefined) {
        throw invalid('pf set needs --num-vfs, --autoprobe or --mtu');
      }
      const host = cli.localHost(terminalProgress());
      // Autoprobe first: it decides whether the VFs about to be created get a driver.
      let changes = 0;
      if (autoprobe !== undefined && (await host.setAutoprobe(pf, autoprobe))) changes++;
      if (numVfs !== undefined && (await host.setNumVfs(pf, numVfs))) changes++;
      if (mtu !== undefined && (await host.setMtu(pf, mtu))) changes++;
      report(cli, `${pf}: ${changes} change(s) applied`, changes);
    });
}

interface VfSetOptions {
  mac?: string;
  vlan?: string;
  qos?: string;
  vlanProto?: string;
  maxTxRate?: string;
  minTxRate?: string;
  spoofchk?: string;
  trust?: string;
  linkState?: string;
}

export function vfSettingsFromFlags(o: VfSetOptions): VfSettings {
  if ((o.qos !== undefined || o.vlanProto !== undefined) && o.vlan === undefined) {
    throw invalid('--qos and --vlan-proto need --vlan');
  }
  const s = parseVfSettings({
    ...o,
    maxTxRateMbps: o.maxTxRate,
    minTxRateMbps: o.minTxRate,
    spoofChk: o.spoofchk,
  });
  if (Object.keys(s).length === 0) throw invalid('vf set needs at least one setting');
  return s;
}

export function registerVfCommands(program: Command, cli: CliContext): void {
  const vf = program.command('vf').description('virtual functions');
  vf.command('set <pf> <vf>')
    .description('configure a VF on its PF (ip link set <pf> vf <vf> ...)')
    .option('--mac <MAC>', 'admin MAC (00:00:00:00:00:00 clears it)')
    .option('--vlan <VID>', 'port VLAN, 0 for none')
    .option('--qos <Q>', '802.1p priority 0-7 (with --vlan)')
    .option('--vlan-proto <P>', '802.1Q or 802.1ad (with --vlan)')
    .option('--max-tx-rate <MBPS>', 'rate limit, 0 for none')
    .option('--min-tx-rate <MBPS>', 'bandwidth guarantee, 0 for none')
    .option('--spoofchk <on|off>', 'source MAC anti-spoofing')
    .option('--trust <on|off>', 'let the VF change its MAC and go promiscuous')
    .option('--link-state <auto|enable|disable>', 'VF link state')
    .action(async (pf: string, index: string, opts: VfSetOptions) => {
      const settings = vfSettingsFromFlags(opts);
      const vfIndex = parseInteger(index, 'VF index', 0, 4095);
      const ops = await cli.localHost(terminalProgress()).setVfSettings(pf, [{ vf: vfIndex, settings }]);
      report(cli, `${pf} vf ${vfIndex}: ${ops.length} setting(s) applied`, ops.length);
    });

  vf.command('bind <pf> <vf>')
    .description('bind a VF to vfio-pci, its kernel driver, or a named driver')
    .requiredOption('--driver <vfio-pci|kernel|NAME>', 'driver to bind')
    .action(async (pf: string, index: string, opts: { driver: string }) => {
      const vfIndex = parseInteger(index, 'VF index', 0, 4095);
      const changed = await cli.localHost(terminalProgress()).bindVf(pf, vfIndex, opts.driver);
      report(cli, `${pf} vf ${vfIndex}: bound to ${opts.driver}`, changed);
    });
}
