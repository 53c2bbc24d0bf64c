/** Rendering for `-o table|json|yaml`. JSON and YAML go to stdout as one document. */
import { stringify } from 'yaml';
import type { HostInventory } from '../host/model.js';
import { parseInteger } from '../host/validate.js';

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
export function table(header: string[], rows: Cell[][]): string {
  const cells = [header, ...rows.map(cellsOf)];
  return layout(cells, widthsOf(cells));
}

export type Cell = string | number | null | undefined;

const cellsOf = (r: Cell[]) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c).replace(/\p{Cc}+/gu, ' ')));
const widthsOf = (cells: string[][]) => cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
const layout = (cells: string[][], widths: number[]) => cells.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';

/** `--page-size`: what the controller takes as `limit`; undefined leaves it the controller's default. */
export function pageSize(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseInteger(text, '--page-size', 1, 1000);
}

/**
 * A paged list written as its pages come (`sriovctl host list` at 1,000
 * hosts prints its first rows before the last page is asked for): table rows
 * in the first page's column widths (a wider cell later pushes its row
 * only), a JSON array written item by item, or YAML list items. Returns how
 * many items were written.
 */
export async function streamList<T>(format: OutputFormat, pages: AsyncIterable<T[]>, header: string[], row: (item: T) => Cell[]): Promise<number> {
  const out = (text: string) => process.stdout.write(text);
  let count = 0;
  let widths: number[] | undefined;
  for await (const page of pages) {
    if (format === 'json') {
      for (const item of page) out(`${count++ === 0 ? '[\n' : ',\n'}${JSON.stringify(item, null, 2).replace(/^/gm, '  ')}`);
      continue;
    }
    count += page.length;
    if (format === 'yaml') {
      if (page.length) out(stringify(page));
      continue;
    }
    const cells = page.map((item) => cellsOf(row(item)));
    if (widths === undefined) {
      widths = widthsOf([header, ...cells]);
      out(layout([header, ...cells], widths));
    } else if (cells.length) out(layout(cells, widths));
  }
  if (format === 'json') out(count === 0 ? '[]\n' : '\n]\n');
  else if (format === 'yaml' && count === 0) out('[]\n');
  else if (format === 'table' && widths === undefined) out(table(header, []));
  return count;
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
