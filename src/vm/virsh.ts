/**
 * Attaching devices to libvirt domains with virsh. virsh, not the libvirt C
 * API: it is what operators run by hand, and its argv is the whole contract.
 */
import { SriovError, invalid, type ErrorCode } from '../host/errors.js';
import { run, type RunResult } from '../host/linux/exec.js';
import { KernelError } from '../host/ports.js';
import { commandWorks } from './command.js';
import { parseDomainName } from './names.js';
import { withTempFile } from './temp-file.js';

export interface VirshOptions {
  /** URI for `virsh -c`; by default virsh's own ($LIBVIRT_DEFAULT_URI, else qemu:///system as root). */
  connect?: string;
}

export interface AttachOptions extends VirshOptions {
  /** Attach to the running domain. */
  live: boolean;
  /** Keep the device in the persistent definition. Neither flag: virsh's `--current`. */
  config: boolean;
}

// A managed hostdev attach unbinds the VF, resets it and maps all guest
// memory for VFIO; for a large guest that takes tens of seconds.
const VIRSH_TIMEOUT_MS = 120_000;
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/\S*$/;

function connectArgs(opts: VirshOptions): string[] {
  if (opts.connect === undefined) return [];
  if (!URI.test(opts.connect)) throw invalid(`"${opts.connect}" is not a libvirt URI (like qemu:///system)`, opts.connect);
  return ['-c', opts.connect];
}

function asSriovError(e: unknown): unknown {
  return e instanceof KernelError && e.errno === 'ETIMEDOUT' ? new SriovError('TIMEOUT', e.message, { cause: e }) : e;
}

/**
 * virsh under the C locale, because its own messages ("failed to get domain")
 * are translated otherwise and the codes below match English text. `env`
 * keeps it an argument vector and reports a missing virsh as exit 127.
 */
async function virsh(opts: VirshOptions, args: string[], timeoutMs = VIRSH_TIMEOUT_MS): Promise<RunResult> {
  const argv = ['LC_ALL=C', 'virsh', ...connectArgs(opts), ...args];
  const res = await run('env', argv, { timeoutMs }).catch((e: unknown) => {
    throw asSriovError(e);
  });
  if (res.code === 127) throw new SriovError('NOT_FOUND', 'virsh is not installed (Debian: libvirt-clients)');
  return res;
}

/** libvirt's reasons, most specific first; anything else is a HOST_ERROR. */
const VIRSH_CODES: Array<[RegExp, ErrorCode]> = [
  [/failed to get domain|Domain not found/i, 'NOT_FOUND'],
  [/not supported|unsupported configuration/i, 'UNSUPPORTED'],
  [/in use by|Device or resource busy/i, 'BUSY'],
  [/Permission denied|authentication failed|access denied/i, 'PERMISSION_DENIED'],
  [/XML error|failed to validate|non-unique alias/i, 'INVALID_ARGUMENT'],
  // e.g. "domain is not running" for --live on a shut-off domain
  [/Requested operation is not valid/i, 'CONFLICT'],
];

/**
 * virsh prints `error: Failed to attach device from <file>` and then
 * `error: <libvirt's reason>`; the temp file's name helps no one.
 */
function virshMessage(res: RunResult): string {
  const lines = res.stderr.split('\n').map((l) => l.trim().replace(/^error: /, ''));
  const reasons = lines.filter((l) => l !== '' && !l.startsWith('Failed to attach device from '));
  return reasons.join('; ') || `exit status ${res.code}`;
}

export function virshError(action: string, res: RunResult, object: string): SriovError {
  const message = virshMessage(res);
  const code = VIRSH_CODES.find(([re]) => re.test(message))?.[1] ?? 'HOST_ERROR';
  return new SriovError(code, `virsh ${action}: ${message}`, { object });
}

/** `virsh attach-device --domain DOMAIN --file FILE [--live] [--config]`; xml is one device element. */
export async function attachToDomain(domain: string, xml: string, opts: AttachOptions): Promise<void> {
  const name = parseDomainName(domain);
  // Named options: a domain called "--live" must stay a domain name.
  const args = ['attach-device', '--domain', name, '--file'];
  const flags = [...(opts.live ? ['--live'] : []), ...(opts.config ? ['--config'] : [])];
  const res = await withTempFile('device.xml', xml, (file) => virsh(opts, [...args, file, ...flags]));
  if (res.code !== 0) throw virshError(`attach-device ${name}`, res, name);
}

/**
 * `virsh [-c URI] ARGS...` for callers with their own command (the
 * hypervisor adapter); a non-zero exit is theirs to read, with virshError.
 */
export function runVirsh(args: string[], opts: VirshOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  return virsh(opts, args, opts.timeoutMs);
}

/** True if libvirt knows the domain; throws when virsh cannot tell (no connection, no permission). */
export async function domainExists(domain: string, opts: VirshOptions = {}): Promise<boolean> {
  const name = parseDomainName(domain);
  const res = await virsh(opts, ['dominfo', '--domain', name]);
  if (res.code === 0) return true;
  const err = virshError(`dominfo ${name}`, res, name);
  if (err.code === 'NOT_FOUND') return false;
  throw err;
}

/** Whether virsh is installed; it does not connect to libvirtd. */
export function virshAvailable(): Promise<boolean> {
  return commandWorks('virsh', ['--version']);
}
