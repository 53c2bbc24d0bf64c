/** Rendering for `-o table|json|yaml`. JSON and YAML go to stdout as one document. */
import { stringify } from 'yaml';
import type { HostInventory } from '../host/model.js';

export type OutputFormat = 'json' | 'table' | 'yaml';

/** Longest error line printed: enough for a code, a field, a limit and a hint. */
const ERROR_LINE_MAX = 400;

/**
 * An error as one terminal line: control characters (newlines from a library
 * message, escapes from a file) become spaces, and the length is capped.
 */
export function errorLine(text: string): string {
  const flat = text.replace(/\p{Cc}+/gu, ' ').trim();
  return flat.length > ERROR_LINE_MAX ? `${flat.slice(0, ERROR_LINE_MAX)}…` : flat;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** `value` as JSON, or as the table `render` makes of it. */
export function emit<T>(format: OutputFormat, value: T, render: (v: T) => string): void {
  if (format === 'json') printJson(value);
  else if (format === 'yaml') process.stdout.write(stringify(value));
  else process.stdout.write(render(value));
}

/** One object or a list of them, as a list: `show` and `list` share their table. */
export const asList = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/**
 * Left-aligned columns, as `ip -br` and kubectl print them. A cell is one
 * line: what hosts report (a reason, an event's object) could otherwise print
 * a forged row or a terminal escape.
 */
export function table(header: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c).replace(/\p{Cc}+/gu, ' '))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

export const onOff = (v: boolean | null) => (v === null ? '-' : v ? 'on' : 'off');

export function inventoryTable(inv: HostInventory): string {
  const pfRows = inv.pfs.map((pf) => [
    pf.name,
    pf.pciAddress,
    pf.driver,
    `${pf.vendorId}:${pf.deviceId}`,
    pf.linkSpeedMbps === null ? pf.linkState : `${pf.linkState} ${pf.linkSpeedMbps}M`,
    pf.mtu,
    pf.numaNode,
    `${pf.numVfs}/${pf.totalVfs}`,
    pf.autoprobe ? 'on' : 'off',
    pf.eswitchMode,
  ]);
  let out = `host ${inv.hostname}\n` + table(['PF', 'PCI', 'DRIVER', 'ID', 'LINK', 'MTU', 'NUMA', 'VFS', 'AUTOPROBE', 'ESWITCH'], pfRows);
  for (const pf of inv.pfs.filter((p) => p.vfs.length > 0)) {
    const rows = pf.vfs.map((vf) => [
      vf.index,
      vf.pciAddress,
      vf.driver,
      vf.netdev,
      vf.iommuGroup,
      vf.mac,
      vf.vlan === 0 ? '-' : `${vf.vlan}${vf.qos ? ` qos ${vf.qos}` : ''}${vf.vlanProto === '802.1ad' ? ' 802.1ad' : ''}`,
      `${vf.minTxRateMbps}/${vf.maxTxRateMbps}`,
      onOff(vf.spoofChk),
      onOff(vf.trust),
      vf.linkState,
    ]);
    out += `\n${pf.name} VFs\n` + table(['VF', 'PCI', 'DRIVER', 'NETDEV', 'IOMMU', 'MAC', 'VLAN', 'MIN/MAX MBPS', 'SPOOFCHK', 'TRUST', 'STATE'], rows);
  }
  return out;
}
