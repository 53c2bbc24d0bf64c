/**
 * What the `devlink` tool prints (iproute2 6.1, `-j`), turned into the
 * Devlink port's facts, and its refusals into KernelErrors. Pure functions:
 * the unit tests feed them answers captured from netdevsim in the lab
 * (test/fixtures/devlink/, test/lab/capture-devlink.sh).
 */
import { errnoFromMessage, invalid } from '../errors.js';
import type { RateLimits } from '../model.js';
import { KernelError, type DevlinkPortFacts, type DevlinkRateFacts } from '../ports.js';
import { devlinkHandle, isNsimDevice, parseInteger, parsePciAddress, parseRateNodeName } from '../validate.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `{"<key>": {"<handle>/<x>": {...}, ...}}` → the entries of this device, in devlink's order. */
function entriesOf(json: unknown, key: string, handle: string, operation: string): Array<[string, Record<string, unknown>]> {
  const table = isObject(json) ? json[key] : undefined;
  if (!isObject(table)) throw new KernelError('EPROTO', operation, `${operation}: no "${key}" object in devlink's JSON`);
  return Object.entries(table).filter((e): e is [string, Record<string, unknown>] => e[0].startsWith(`${handle}/`) && isObject(e[1]));
}

const intOrNull = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) ? v : null);

/** `devlink -j port show` → this device's ports (the dump lists every device's). */
export function parsePorts(json: unknown, handle: string): DevlinkPortFacts[] {
  return entriesOf(json, 'port', handle, 'devlink port show').map(([port, p]) => ({
    port,
    flavour: typeof p.flavour === 'string' ? p.flavour : 'unknown',
    netdev: typeof p.netdev === 'string' ? p.netdev : null,
    pfnum: intOrNull(p.pfnum),
    vfnum: intOrNull(p.vfnum),
  }));
}

const BITS_PER_MBIT = 1_000_000;

/**
 * A rate as devlink's JSON prints it, in bytes per second (`tx_share 10mbit`
 * shows as 1250000), → whole Mbit/s. vfleet keeps rates in whole Mbit/s;
 * anything else was set by hand in other units, and rounding it would
 * report a rate the NIC does not enforce.
 */
export function mbpsOfBytesPerSecond(value: unknown, what: string, object: string): number {
  if (value === undefined) return 0; // devlink prints no tx_share/tx_max that is 0 (unset)
  const bits = typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value * 8 : NaN;
  if (!Number.isSafeInteger(bits) || bits % BITS_PER_MBIT !== 0) {
    throw new KernelError(
      'ERANGE',
      'devlink port function rate show',
      `${object}: ${what} is ${String(value)} bytes/s, not a whole number of Mbit/s; vfleet sets rates in whole Mbit/s: set it again in mbit`,
    );
  }
  return bits / BITS_PER_MBIT;
}

/** `devlink -j port function rate show` → this device's leaves and nodes. */
export function parseRates(json: unknown, handle: string): DevlinkRateFacts[] {
  return entriesOf(json, 'rate', handle, 'devlink port function rate show').flatMap(([object, r]) => {
    if (r.type !== 'leaf' && r.type !== 'node') return [];
    return [
      {
        object,
        type: r.type,
        txShareMbps: mbpsOfBytesPerSecond(r.tx_share, 'tx_share', object),
        txMaxMbps: mbpsOfBytesPerSecond(r.tx_max, 'tx_max', object),
        parent: typeof r.parent === 'string' && r.parent !== '' ? r.parent : null,
      },
    ];
  });
}

/** `{"dev":{"pci/0000:3b:00.0":{"mode":"switchdev",...}}}` → the mode, else null. */
export function parseEswitchMode(json: unknown, handle: string): 'legacy' | 'switchdev' | null {
  const dev = isObject(json) && isObject(json.dev) ? json.dev[handle] : undefined;
  const mode = isObject(dev) ? dev.mode : undefined;
  return mode === 'legacy' || mode === 'switchdev' ? mode : null;
}

// ---- arguments -------------------------------------------------------------

/** A rate in whole Mbit/s as devlink takes it: `100mbit`. */
export const rateArg = (mbps: number, what: string): string => `${parseInteger(mbps, what, 0, 400_000)}mbit`;

/**
 * `tx_share Nmbit tx_max Nmbit`, for the limits that are given. The devlink
 * tool (iproute2 6.1) refuses a tx_share above a non-zero tx_max, with the
 * one given in the command or, when only one is, the object's current one
 * ("Invalid. Expected tx_share <= tx_max or tx_share == 0."), before it asks
 * the kernel, which would take it.
 */
export function rateArgs(limits: Partial<RateLimits>): string[] {
  const args: string[] = [];
  if (limits.txShareMbps !== undefined) args.push('tx_share', rateArg(limits.txShareMbps, 'tx_share'));
  if (limits.txMaxMbps !== undefined) args.push('tx_max', rateArg(limits.txMaxMbps, 'tx_max'));
  return args;
}

/**
 * A rate object, `<handle>/<port index>` (a leaf) or `<handle>/<node name>`,
 * checked part by part and returned canonical: devlink parses it again, and
 * `pci/0000:3b:00.0/../x` must never reach it.
 */
export function parseRateObject(value: string): { object: string; device: string; name: string; leaf: boolean } {
  const m = typeof value === 'string' ? /^(pci|netdevsim)\/([^/]+)\/([^/]+)$/.exec(value) : null;
  if (!m) throw invalid(`${JSON.stringify(value)} is not a devlink rate object (pci/<BDF>/<port> or netdevsim/netdevsim<N>/<node>)`, String(value));
  const [, bus, dev, name] = m as unknown as [string, string, string, string];
  const device = bus === 'pci' ? parsePciAddress(dev) : isNsimDevice(dev) ? dev : '';
  if (device === '') throw invalid(`${JSON.stringify(value)} names no netdevsim device (netdevsim<N>)`, value);
  const leaf = /^\d+$/.test(name);
  const last = leaf ? String(parseInteger(name, 'devlink port index', 0, 0xffffffff)) : parseRateNodeName(name);
  return { object: `${devlinkHandle(device)}/${last}`, device, name: last, leaf };
}

// ---- errors ----------------------------------------------------------------

/** strerror texts that errnoFromMessage (iproute2's rtnetlink ones) does not know. */
const MORE_ERRNO_TEXT: Array<[RegExp, string]> = [
  [/No such file or directory/i, 'ENOENT'],
  [/Cannot allocate memory/i, 'ENOMEM'],
];

/**
 * devlink's stderr on a refusal: the extack line(s) `Error: <message>` and
 * `kernel answers: <strerror>`. → the errno name (EINVAL when devlink
 * refused the command itself, before asking the kernel) and the extack text.
 */
export function parseDevlinkError(stderr: string): { errno: string; extack: string | null } {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const extack = lines.filter((l) => l.startsWith('Error: ')).map((l) => l.slice('Error: '.length)).join(' ') || null;
  const answer = lines.find((l) => l.startsWith('kernel answers: '))?.slice('kernel answers: '.length);
  if (answer === undefined) return { errno: 'EINVAL', extack: extack ?? (lines.join(' ') || null) };
  const errno = MORE_ERRNO_TEXT.find(([re]) => re.test(answer))?.[1] ?? errnoFromMessage(answer) ?? 'EIO';
  return { errno, extack };
}

/** A failed devlink command as the port reports it: `<command>: <strerror> (<extack>)`. */
export function devlinkError(operation: string, stderr: string, code: number): KernelError {
  const { errno, extack } = parseDevlinkError(stderr);
  const answer = stderr.match(/kernel answers: (.+)/)?.[1]?.trim() ?? `exit ${code}`;
  return new KernelError(errno, operation, `${operation}: ${answer}${extack ? ` (${extack})` : ''}`);
}
