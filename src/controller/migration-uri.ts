/**
 * Where a hypervisor migrates a VM to. The URI reaches QEMU's `migrate`
 * command or virsh's argv on a host, so only plain, known forms pass.
 */
import type { HypervisorKind } from '../domain/types.js';
import { invalid } from '../host/errors.js';
import { shown } from '../host/validate.js';

/**
 * `tcp:198.18.0.2:4444`: QEMU's -incoming on an IPv4 address. No leading
 * zeros: inet_aton reads `010` as octal 8, so the address QEMU dials would not
 * be the one shown (and the agent refuses them: hypervisor/validate.ts).
 */
const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const QMP_TCP = new RegExp(`^tcp:${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}:([1-9]\\d{0,4})$`);
/** `unix:/run/vfleet/qmp/vm1.migrate`: an absolute path of safe characters, no `..`. */
const QMP_UNIX = /^unix:(\/[A-Za-z0-9_.\-/]{1,200})$/;
/** sockaddr_un.sun_path is 108 bytes with its terminating NUL: a longer path the agent refuses after the reservation. */
const MAX_SOCKET_PATH = 107;
/** `qemu+ssh://host-b/system`, `qemu+tcp://198.18.0.2:16509/system`, `qemu+tls://...`. */
const LIBVIRT = /^qemu(\+(ssh|tcp|tls))?:\/\/[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:\d{1,5})?\/system$/;

const QMP_FORMS = '`tcp:<IPv4>:<port>` (like tcp:198.18.0.2:4444) or `unix:<absolute path>`';
const LIBVIRT_FORMS = 'a libvirt URI like qemu+ssh://host-b/system (qemu, qemu+ssh, qemu+tcp or qemu+tls)';

/** The checked URI, or null when none was given; refuses one where the hypervisor takes none. */
export function parseMigrateUri(value: unknown, hypervisor: HypervisorKind | null): string | null {
  if (value === undefined || value === null) {
    if (hypervisor === 'qemu') throw invalid(`migrateUri is required with --hypervisor qemu: ${QMP_FORMS}, as the destination QEMU's -incoming`);
    return null;
  }
  if (hypervisor === null || hypervisor === 'hook') {
    throw invalid(`migrateUri is only for --hypervisor qemu or libvirt; ${hypervisor === null ? 'a container moves without a hypervisor' : 'with hook, the orchestrator moves the VM'}`);
  }
  if (typeof value !== 'string') throw invalid(`migrateUri must be a string, got ${shown(value)}`);
  return hypervisor === 'qemu' ? parseQmpUri(value) : parseLibvirtUri(value);
}

function parseQmpUri(value: string): string {
  const tcp = QMP_TCP.exec(value);
  if (tcp && Number(tcp[5]) <= 65535) return value;
  const unix = QMP_UNIX.exec(value);
  if (unix && unix[1]!.length > MAX_SOCKET_PATH) {
    throw invalid(`migrateUri: the socket path is ${unix[1]!.length} bytes, over a unix socket's ${MAX_SOCKET_PATH}; give the destination QEMU's -incoming a shorter path`, value.slice(0, 120));
  }
  if (unix && !unix[1]!.split('/').includes('..')) return value;
  throw invalid(`migrateUri ${shown(value)} is not ${QMP_FORMS}`, value);
}

function parseLibvirtUri(value: string): string {
  const port = /:(\d+)\/system$/.exec(value);
  if (LIBVIRT.test(value) && (!port || (Number(port[1]) >= 1 && Number(port[1]) <= 65535))) return value;
  throw invalid(`migrateUri ${shown(value)} is not ${LIBVIRT_FORMS}`, value);
}
