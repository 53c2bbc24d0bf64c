/**
 * Names of libvirt objects (domains, networks) that reach virsh's argv and
 * XML documents.
 *
 * libvirt itself refuses only '/' (the name becomes a file name under
 * /etc/libvirt and /run/libvirt) and a newline. The rule here is stricter:
 *   - 1 to 200 bytes of UTF-8: libvirt appends suffixes such as `.xml`,
 *     `.log` or `-swtpm.log` to the name for its files, and NAME_MAX is 255;
 *   - no '/';
 *   - no control characters (Unicode Cc: C0, DEL, C1): XML 1.0 cannot carry
 *     most of them, and they garble logs and terminals;
 *   - no leading or trailing whitespace: `virsh list` output cannot show it,
 *     so such a domain could not be told apart from its trimmed twin.
 * Spaces inside, quotes and non-ASCII letters stay allowed, as libvirt allows
 * them; the XML builder escapes them and virsh gets them as one argv element.
 */
import { invalid } from '../host/errors.js';

const MAX_NAME_BYTES = 200;

export function parseLibvirtName(value: string, what: string): string {
  const shown = JSON.stringify(value);
  if (value.length === 0) throw invalid(`${what} must not be empty`, value);
  if (Buffer.byteLength(value, 'utf8') > MAX_NAME_BYTES) {
    throw invalid(`${what} ${shown} is longer than ${MAX_NAME_BYTES} bytes`, value);
  }
  if (value.includes('/')) throw invalid(`${what} ${shown} must not contain '/'`, value);
  if (/\p{Cc}/u.test(value)) throw invalid(`${what} ${shown} must not contain control characters`, value);
  if (value.trim() !== value) throw invalid(`${what} ${shown} must not start or end with whitespace`, value);
  return value;
}

export const parseDomainName = (value: string) => parseLibvirtName(value, 'domain name');
export const parseNetworkName = (value: string) => parseLibvirtName(value, 'network name');
