/**
 * The `--store etcd://h1:2379,h2:2379[/prefix]` URL and the etcd client's
 * TLS and auth options, checked before anything connects: each refusal
 * names the part that is wrong (scheme, member, host, port, prefix) and
 * what to write instead. Parsed by hand, not with WHATWG `URL`: that takes
 * one host only, and would percent-decode a prefix into a key.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { invalid } from '../../host/errors.js';
import { DEFAULT_PREFIX } from './keys.js';

export const DEFAULT_ETCD_PORT = 2379;
/** Client endpoints, not cluster members: a handful, but a load balancer list may be longer. */
const MAX_ENDPOINTS = 32;
const MAX_PREFIX = 200;
const USAGE = 'etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]';

/** The etcd client options as sriovd takes them (`--etcd-cacert` ... `--etcd-password-file`): file paths. */
export interface EtcdClientOptions {
  cacert?: string;
  cert?: string;
  key?: string;
  user?: string;
  passwordFile?: string;
}

export interface EtcdTarget {
  /** `http://host:port` each, `https://` with a CA: what the client dials. */
  endpoints: string[];
  /** The keyspace prefix, `/` at both ends (`/vfleet/` by default). */
  prefix: string;
  /** Files the client reads: the CA, and this client's certificate and key when the server asks for one. */
  tls: { cacert: string; cert?: string; key?: string } | null;
  auth: { user: string; passwordFile: string } | null;
}

const quoted = (s: string) => JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);

/** A host name as RFC 1123 has it (letters, digits, hyphens; labels of 1-63), at most 253 long. */
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PORT = /^[1-9][0-9]{0,4}$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export function isEtcdUrl(url: string): boolean {
  return /^etcd:\/\//i.test(url);
}

/** Parses `url` with the client options; throws INVALID_ARGUMENT naming the part, and nothing connects. */
export function parseEtcdUrl(url: string, options: EtcdClientOptions = {}): EtcdTarget {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (!scheme) throw invalid(`--store ${quoted(url)} is not a store URL: write ${USAGE}`, url);
  if (scheme[1]!.toLowerCase() !== 'etcd') {
    throw invalid(`--store: scheme ${quoted(scheme[1]!)} is not supported: write ${USAGE} (or leave --store out for SQLite in --data-dir)`, url);
  }
  const rest = url.slice(scheme[0].length);
  const bad = /[?#@\s]/.exec(rest);
  if (bad) throw invalid(`--store: ${refusedCharacter(bad[0])} in ${quoted(url)}: write ${USAGE}`, url);
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const tls = tlsOf(options);
  const members = authority.split(',');
  if (members.length > MAX_ENDPOINTS) throw invalid(`--store: ${members.length} endpoints, at most ${MAX_ENDPOINTS}`, url);
  const endpoints = members.map((m, i) => `${tls ? 'https' : 'http'}://${parseMember(m, i + 1, members.length)}`);
  const twice = endpoints.find((e, i) => endpoints.indexOf(e) !== i);
  if (twice) throw invalid(`--store: endpoint ${twice.replace(/^https?:\/\//, '')} is listed twice`, url);
  return { endpoints, prefix: parsePrefix(path), tls, auth: authOf(options) };
}

function refusedCharacter(c: string): string {
  if (c === '@') return 'credentials do not belong in the URL (use --etcd-user and --etcd-password-file)';
  if (c === '?' || c === '#') return `a query or fragment (${c}) has no meaning`;
  return 'white space';
}

/** `host`, `host:port`, `[v6]` or `[v6]:port`; returns it as an endpoint's `host:port`. */
function parseMember(member: string, n: number, of: number): string {
  const which = of > 1 ? `member ${n} of ${of}` : 'the member';
  if (member === '') throw invalid(`--store: ${which} is empty (a stray comma?): write ${USAGE}`);
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(member);
  const [host, port] = v6 ? [v6[1]!, v6[2]] : splitPort(member);
  if (v6 ? !isIPv6(host) : !isHost(host)) {
    throw invalid(`--store: ${which} has a bad host ${quoted(host)}: a DNS name, an IPv4 address, or an IPv6 address in [ ]`);
  }
  const p = port === undefined ? DEFAULT_ETCD_PORT : Number(port);
  if (port !== undefined && (!PORT.test(port) || p > 65535)) {
    throw invalid(`--store: ${which} (${quoted(host)}) has a bad port ${quoted(port)}: a number 1-65535 (etcd's is ${DEFAULT_ETCD_PORT})`);
  }
  return `${v6 ? `[${host}]` : host.toLowerCase()}:${p}`;
}

function splitPort(member: string): [string, string | undefined] {
  const colon = member.lastIndexOf(':');
  return colon < 0 ? [member, undefined] : [member.slice(0, colon), member.slice(colon + 1)];
}

function isHost(host: string): boolean {
  // All digits and dots is meant as an IPv4 address: 300.1.1.1 is not a host name.
  if (/^[0-9.]+$/.test(host)) return isIPv4(host);
  return HOST_NAME.test(host.toLowerCase());
}

/** `''` or `/` is the default; otherwise `/a/b` segments of letters, digits, `._-` (no `.` or `..`), kept as `/a/b/`. */
function parsePrefix(path: string): string {
  const segments = path.split('/').filter((s) => s !== '');
  if (segments.length === 0) return DEFAULT_PREFIX;
  const prefix = `/${segments.join('/')}/`;
  if (prefix.length > MAX_PREFIX) throw invalid(`--store: the prefix is ${prefix.length} characters, at most ${MAX_PREFIX}`);
  const bad = segments.find((s) => !PREFIX_SEGMENT.test(s) || s === '.' || s === '..');
  if (bad !== undefined || /\/\//.test(path)) {
    throw invalid(`--store: bad prefix ${quoted(path)}: segments of letters, digits, . _ - separated by single /, e.g. /vfleet/region1`);
  }
  return prefix;
}

function tlsOf(o: EtcdClientOptions): EtcdTarget['tls'] {
  if ((o.cert === undefined) !== (o.key === undefined)) {
    throw invalid(`${o.cert === undefined ? '--etcd-key' : '--etcd-cert'} needs ${o.cert === undefined ? '--etcd-cert' : '--etcd-key'}: a client certificate and its key go together`);
  }
  if (o.cacert === undefined) {
    if (o.cert !== undefined) throw invalid('--etcd-cert needs --etcd-cacert, the CA that signed the etcd servers\' certificates');
    return null;
  }
  for (const [flag, file] of [['--etcd-cacert', o.cacert], ['--etcd-cert', o.cert], ['--etcd-key', o.key]] as const) {
    if (file === '') throw invalid(`${flag} is empty: give a file`);
  }
  return { cacert: o.cacert, ...(o.cert === undefined ? {} : { cert: o.cert, key: o.key }) };
}

function authOf(o: EtcdClientOptions): EtcdTarget['auth'] {
  if (o.user === undefined && o.passwordFile === undefined) return null;
  if (o.user === undefined) throw invalid('--etcd-password-file needs --etcd-user, the etcd user it is the password of');
  if (o.passwordFile === undefined || o.passwordFile === '') throw invalid('--etcd-user needs --etcd-password-file (a password is never taken on the command line)');
  if (!/^[A-Za-z0-9_.@-]{1,128}$/.test(o.user)) throw invalid(`--etcd-user ${quoted(o.user)}: 1-128 of letters, digits, _ . @ -`);
  return { user: o.user, passwordFile: o.passwordFile };
}
