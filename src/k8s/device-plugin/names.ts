/**
 * The plugin's socket file name, derived from the resource name. The name is
 * checked against Kubernetes' rules for an extended resource
 * (`<DNS subdomain>/<qualified name>`) before it becomes part of a path: a
 * qualified name is [A-Za-z0-9._-], starts and ends alphanumeric, so it can
 * never hold a `/` or be `..`.
 */
import { Buffer } from 'node:buffer';
import { join } from 'node:path';
import { SriovError } from '../../host/errors.js';

const DNS_LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS_SUBDOMAIN = new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`);
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
/** sockaddr_un.sun_path is 108 bytes with its NUL on Linux. */
const MAX_SOCKET_PATH = 107;

/** Refuses a resource name the kubelet would refuse (or that could escape the socket directory). */
export function checkResourceName(resourceName: string): { domain: string; name: string } {
  const [domain, name, ...rest] = resourceName.split('/');
  const ok =
    rest.length === 0 &&
    domain !== undefined &&
    name !== undefined &&
    domain.length <= 253 &&
    DNS_SUBDOMAIN.test(domain) &&
    !domain.endsWith('kubernetes.io') &&
    name.length <= 63 &&
    QUALIFIED_NAME.test(name);
  if (!ok) {
    throw new SriovError(
      'INVALID_ARGUMENT',
      `resource name ${JSON.stringify(resourceName)} is not an extended resource name: ` +
        'use <DNS subdomain>/<name>, the name at most 63 characters of letters, digits, "-", "_", "." starting and ending alphanumeric (e.g. vfleet.io/red-bw)',
      { object: resourceName, nothingChanged: true },
    );
  }
  return { domain, name };
}

/** `vfleet-<name>.sock`: the endpoint sent to the kubelet, a file name in its directory. */
export function socketNameFor(resourceName: string): string {
  return `vfleet-${checkResourceName(resourceName).name}.sock`;
}

/** The socket's full path; refused when too long for a unix socket address. */
export function socketPathFor(kubeletDir: string, resourceName: string): string {
  const path = join(kubeletDir, socketNameFor(resourceName));
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) {
    throw new SriovError(
      'INVALID_ARGUMENT',
      `socket path ${path} is ${Buffer.byteLength(path)} bytes, over the ${MAX_SOCKET_PATH} a unix socket address holds: use a shorter --kubelet-dir or pool name`,
      { object: resourceName, nothingChanged: true },
    );
  }
  return path;
}
