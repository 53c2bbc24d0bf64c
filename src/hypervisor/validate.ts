/**
 * Checks on everything a hypervisor task carries before it reaches a QMP
 * command, a socket path or virsh's argv. The controller builds tasks, but
 * an agent acts on its own host: it checks them again, and bad input
 * changes nothing.
 */
import { join } from 'node:path';
import { invalid } from '../host/errors.js';
import { parseMac, parsePciAddress, parseVlan } from '../host/validate.js';
import { parseDomainName } from '../vm/names.js';
import { parseQemuId } from '../vm/qemu.js';
import type { MigrateRequest, PlugRequest, UnplugRequest } from './hypervisor.js';

export { parseQemuId };

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
// Letters, digits and `_ . - /` only: the path goes into QMP's JSON and QEMU's own URI parser.
const SAFE_PATH = /^\/[A-Za-z0-9_./-]*$/;
const MAX_SOCKET_PATH = 107; // sockaddr_un.sun_path is 108 bytes with its terminating NUL

/** A QMP migration URI: `tcp:<ipv4>:<port>` or `unix:<absolute path of safe characters>`. */
export function parseMigrateUri(value: string): string {
  const tcp = /^tcp:([0-9.]+):(\d{1,5})$/.exec(value);
  if (tcp && IPV4.test(tcp[1]!) && Number(tcp[2]) >= 1 && Number(tcp[2]) <= 65535) return value;
  const unix = /^unix:(.*)$/.exec(value);
  if (unix && SAFE_PATH.test(unix[1]!) && !unix[1]!.split('/').includes('..') && unix[1]!.length <= MAX_SOCKET_PATH) return value;
  throw invalid(
    `migration URI ${JSON.stringify(value)} must be tcp:<IPv4>:<port 1-65535> or unix:<absolute path of letters, digits, _ . - />, as the destination QEMU's -incoming`,
    value,
  );
}

// `qemu+ssh://host-b/system`, `qemu+tcp://198.18.0.2:16509/system`, `qemu:///system`; an optional
// query of safe characters (`?keyfile=/etc/vfleet/id_ed25519`).
const LIBVIRT_URI = /^qemu(\+(ssh|tcp|tls|libssh2|libssh|unix))?:\/\/([A-Za-z0-9][A-Za-z0-9.-]*(:\d{1,5})?)?\/(system|session)(\?[A-Za-z0-9_.=&/-]+)?$/;

/** A libvirt destination URI for `virsh migrate --desturi`. */
export function parseLibvirtUri(value: string, what = 'libvirt URI'): string {
  if (LIBVIRT_URI.test(value)) return value;
  throw invalid(`${what} ${JSON.stringify(value)} must look like qemu+ssh://<host>/system (qemu, qemu+ssh, qemu+tcp or qemu+tls; system or session)`, value);
}

/**
 * A migration's destination URI, as the controller sends it: no query. A
 * libvirt URI's query names programs virsh runs (`?command=` the local ssh,
 * `?netcat=` the remote nc) and sockets (`?socket=`): an agent takes those
 * from its own --libvirt-uri only, never from a task.
 */
export function parseLibvirtDestination(value: string): string {
  if (value.includes('?')) {
    throw invalid(`migration destination ${JSON.stringify(value)} takes no query (?command=, ?netcat= and ?socket= would name programs and sockets on this host); give a plain URI like qemu+ssh://<host>/system`, value);
  }
  return parseLibvirtUri(value, 'migration destination');
}

export function parseMigrateRequest(req: MigrateRequest, destination: (uri: string) => string): MigrateRequest {
  return { vm: parseDomainName(req.vm), destination: destination(req.destination), sourceDevice: parseQemuId(req.sourceDevice) };
}

export function parsePlugRequest(req: PlugRequest): PlugRequest {
  return {
    vm: parseDomainName(req.vm),
    pciAddress: parsePciAddress(req.pciAddress),
    device: parseQemuId(req.device),
    mac: parseMac(req.mac),
    failoverPairId: req.failoverPairId === null ? null : parseQemuId(req.failoverPairId),
    vlan: parseVlan(req.vlan ?? 0),
  };
}

export function parseUnplugRequest(req: UnplugRequest): UnplugRequest {
  return { vm: parseDomainName(req.vm), device: parseQemuId(req.device) };
}

/**
 * `<qmpDir>/<vm>.qmp`, from a checked VM name only: a domain name has no
 * '/', so the socket stays in the directory; sun_path's length is checked here
 * so that the error names the VM instead of ENAMETOOLONG.
 */
export function qmpSocketPath(qmpDir: string, vm: string): string {
  const path = join(qmpDir, `${parseDomainName(vm)}.qmp`);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw invalid(`QMP socket ${path} is longer than ${MAX_SOCKET_PATH} bytes (a unix socket's limit); use a shorter --qmp-dir or VM name`, vm);
  }
  return path;
}

/** Where the QMP adapter notes that a VM left this host (`<qmpDir>/<vm>.migrated`), beside its socket. */
export function qmpDeparturePath(qmpDir: string, vm: string): string {
  return `${qmpSocketPath(qmpDir, vm).slice(0, -'.qmp'.length)}.migrated`;
}
