/**
 * The two inputs of a CNI call, parsed and validated before anything talks
 * to the daemon: the network configuration on stdin, and the CNI_*
 * environment. A runtime shows our error to the user, so each refusal names
 * the field and what it wanted. A configuration:
 *
 *   { "cniVersion": "1.1.0", "name": "fabric-a", "type": "vfleet-cni",   // name: the CNI network
 *     "network": "blue-100",                      // the vfleet network (required)
 *     "server": "http://127.0.0.1:7474",          // or "socket": "/run/vfleet/sriovd.sock"
 *     "tokenFile": "/etc/vfleet/cni.token",       // a node:<host> token; or "token": "..."
 *     "deviceID": "0000:3b:02.0",                 // optional; also runtimeConfig.deviceID, args.cni.deviceID
 *     "capabilities": { "mac": true, "ips": true }, // runtimeConfig.mac / .ips: that MAC, those addresses
 *     "timeoutSeconds": 60, "host": "<os.hostname()>", "hostBackend": "linux" }
 *
 * DEL reads only what tearing down needs (parseDelConfig), so a configuration
 * that changed or went partly invalid since ADD still lets pods go.
 *
 * The network configuration is not the node's to trust: in Kubernetes it is a
 * NetworkAttachmentDefinition, which anyone allowed to create one in a
 * namespace writes. So whom the plugin (running as root) talks to and which
 * token file it reads can be fixed by the node: /etc/vfleet/cni.json
 * (loadNodeConfig), `{ "server": URL, "tokenFile": PATH, "host"?: NAME }`.
 * When it exists it decides them; a network configuration that names another
 * server (or a socket), another token file, an inline token, or another host
 * is refused before any file is read or request sent.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { hostname } from 'node:os';
import { isCniNetworkName } from '../domain/cni-attachment.js';
import { parseCidr, parseIfName, parseIp, parseMac, parseNetnsPath, parsePciAddress } from '../host/validate.js';
import { CniCode, CniError, validated } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

const DEFAULT_SERVER = 'http://127.0.0.1:7474';
const DEFAULT_TOKEN_FILE = '/etc/vfleet/cni.token';
const DEFAULT_TIMEOUT_SECONDS = 60;

// A version DEL accepts without speaking it: the config may be newer than this plugin.
const SEMVER = /^\d+\.\d+\.\d+$/;
// The spec allows [A-Za-z0-9_.-]; the daemon also wants workload names to start alphanumeric.
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

/** How to reach the daemon, and as whom. */
export interface Endpoint {
  /** Base URL of sriovd's API; with `socket`, only its path matters. */
  server: string;
  /** Unix socket the daemon listens on, instead of TCP. */
  socket?: string;
  token?: string;
  tokenFile: string;
  timeoutSeconds: number;
  /** This host's name as the daemon knows it. */
  host: string;
}

/** What DEL needs: whom to ask, and which attachment (the CNI network `name`; `network` for older allocations). */
export interface DelConfig extends Endpoint {
  cniVersion: string;
  name: string;
  network?: string;
}

/** One entry of GC's `cni.dev/valid-attachments`. */
export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

export interface PluginConfig extends Endpoint {
  cniVersion: CniVersion;
  /** The CNI network's name: part of every attachment's identity. */
  name: string;
  type: string;
  /** The vfleet network to allocate from. */
  network: string;
  /** The VF a device plugin picked for this container. */
  deviceID?: string;
  /** The `mac` capability: the MAC the runtime wants the interface to have. */
  mac?: string;
  /** The `ips` capability: the addresses the runtime wants (CIDR, or bare and given the pool's prefix). */
  ips?: string[];
  /** GC: the attachments of this network that are still in use. */
  validAttachments: ValidAttachment[];
  /** Where CHECK reads the VF: `linux`, or `sim:FILE` for a simulated host. */
  hostBackend: string;
  prevResult?: unknown;
}

const COMMANDS = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'] as const;
export type CniCommand = (typeof COMMANDS)[number];

/** The container a call is about (ADD, CHECK, DEL). */
export interface ContainerEnv {
  containerId: string;
  ifname: string;
  /** Normalized as the daemon stores it; unchecked (possibly empty) for DEL. */
  netns: string;
}

type Json = Record<string, unknown>;

/** The node's own plugin configuration: where the daemon is and which token to read. */
export const NODE_CONFIG_PATH = '/etc/vfleet/cni.json';
/** Its only override (tests). The runtime sets a plugin's environment; a network configuration cannot (CNI_ARGS are not environment). */
export const NODE_CONFIG_ENV = 'VFLEET_CNI_NODE_CONFIG';
const NODE_CONFIG_MAX_BYTES = 64 * 1024;
const NODE_CONFIG_FIELDS = ['server', 'tokenFile', 'host'];

export interface NodeConfig {
  /** Where it was read from, for messages. */
  path: string;
  server: string;
  tokenFile: string;
  host?: string;
}

const configError = (msg: string) => new CniError(CniCode.INVALID_CONFIG, msg);

export function parseCommand(env: NodeJS.ProcessEnv): CniCommand {
  const command = env.CNI_COMMAND;
  if (!command) throw new CniError(CniCode.INVALID_ENV, 'CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(command)) throw new CniError(CniCode.INVALID_ENV, `unknown CNI_COMMAND "${command}" (expected ${COMMANDS.join(', ')})`);
  return command as CniCommand;
}

/** CNI_CONTAINERID, CNI_IFNAME and CNI_NETNS. */
export function parseContainerEnv(env: NodeJS.ProcessEnv, command: CniCommand): ContainerEnv {
  const containerId = env.CNI_CONTAINERID ?? '';
  if (!CONTAINER_ID.test(containerId)) {
    throw new CniError(CniCode.INVALID_ENV, `CNI_CONTAINERID must be 1-253 of A-Z a-z 0-9 _ . - , got "${containerId}"`);
  }
  const ifname = validated(CniCode.INVALID_ENV, () => parseIfName(env.CNI_IFNAME ?? ''));
  // DEL finds the allocation by container and interface: its namespace may be empty, gone, or never was.
  const netns = command === 'DEL' ? (env.CNI_NETNS ?? '') : validated(CniCode.INVALID_ENV, () => parseNetnsPath(env.CNI_NETNS ?? ''));
  return { containerId, ifname, netns };
}

function parseJson(stdin: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(CniCode.DECODE_FAILURE, `network configuration on stdin is not JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CniError(CniCode.DECODE_FAILURE, 'network configuration on stdin must be a JSON object');
  }
  return value as Json;
}

function parseVersion(raw: Json): CniVersion {
  const v = raw.cniVersion;
  if (typeof v === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(v)) return v as CniVersion;
  const given = typeof v === 'string' ? `cniVersion ${v}` : 'no cniVersion (0.1.0 implied)';
  throw new CniError(CniCode.INCOMPATIBLE_VERSION, `${given} is not supported; vfleet-cni supports ${SUPPORTED_VERSIONS.join(', ')}`);
}

/** The version to answer an error in: the configuration's when it is one we speak. */
export function errorVersion(stdin: string): CniVersion {
  try {
    return parseVersion(parseJson(stdin));
  } catch {
    return '1.0.0';
  }
}

/**
 * The node's plugin configuration, or undefined when there is none (then the
 * network configuration says where the daemon is, as before). A regular file
 * of at most 64 KiB holding a JSON object with `server` and `tokenFile`, and
 * optionally `host`; anything else is refused, naming the file.
 */
export function loadNodeConfig(env: NodeJS.ProcessEnv): NodeConfig | undefined {
  const path = env[NODE_CONFIG_ENV] || NODE_CONFIG_PATH;
  const text = readNodeConfigFile(path);
  if (text === undefined) return undefined;
  const bad = (msg: string) => new CniError(CniCode.INVALID_CONFIG, `the node's plugin config ${path} ${msg}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw bad(`is not JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('must be a JSON object { "server": URL, "tokenFile": PATH }');
  const json = raw as Json;
  const unknown = Object.keys(json).filter((k) => !NODE_CONFIG_FIELDS.includes(k));
  if (unknown.length) throw bad(`has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (it takes ${NODE_CONFIG_FIELDS.join(', ')})`);
  try {
    const server = parseServerUrl(requiredString(json, 'server'));
    const tokenFile = requiredString(json, 'tokenFile');
    if (!tokenFile.startsWith('/')) throw configError(`"tokenFile" must be an absolute path, got "${tokenFile}"`);
    const host = optionalString(json, 'host', HOST_NAME);
    return { path, server, tokenFile, ...(host === undefined ? {} : { host }) };
  } catch (e) {
    throw bad(`is invalid: ${(e as Error).message.replace('in the network configuration', 'in it')}`);
  }
}

function readNodeConfigFile(path: string): string | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put there must not hang the plugin before fstat refuses it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CniError(CniCode.IO_FAILURE, `cannot open the node's plugin config ${path}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CniError(CniCode.INVALID_CONFIG, `the node's plugin config ${path} is not a regular file`);
    if (st.size > NODE_CONFIG_MAX_BYTES) throw new CniError(CniCode.INVALID_CONFIG, `the node's plugin config ${path} is ${st.size} bytes; at most ${NODE_CONFIG_MAX_BYTES} are taken`);
    const buf = Buffer.alloc(NODE_CONFIG_MAX_BYTES + 1);
    let length = 0;
    for (let n; length < buf.length && (n = readSync(fd, buf, length, buf.length - length, null)) > 0; ) length += n;
    if (length > NODE_CONFIG_MAX_BYTES) throw new CniError(CniCode.INVALID_CONFIG, `the node's plugin config ${path} is larger than ${NODE_CONFIG_MAX_BYTES} bytes`);
    return buf.subarray(0, length).toString('utf8');
  } catch (e) {
    if (e instanceof CniError) throw e;
    throw new CniError(CniCode.IO_FAILURE, `cannot read the node's plugin config ${path}: ${(e as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/**
 * With a node configuration, the network configuration may repeat its
 * `server`, `tokenFile` and `host` but not change them, nor name a socket or
 * an inline token instead: one refusal, naming the field.
 */
function nodeEndpointOf(raw: Json, node: NodeConfig): { server: string; tokenFile: string; host?: string } {
  const refuse = (field: string, sets: string) =>
    configError(`"${field}" in the network configuration differs from this node's: the node's ${node.path} sets ${sets}; remove "${field}" from the network configuration`);
  if (raw.socket !== undefined) throw refuse('socket', '"server"');
  if (raw.token !== undefined) throw refuse('token', '"tokenFile"');
  if (raw.server !== undefined) {
    if (!sameServer(optionalString(raw, 'server')!, node.server)) throw refuse('server', 'it');
  }
  if (raw.tokenFile !== undefined && raw.tokenFile !== node.tokenFile) throw refuse('tokenFile', 'it');
  if (node.host !== undefined && raw.host !== undefined && raw.host !== node.host) throw refuse('host', 'it');
  return { server: node.server, tokenFile: node.tokenFile, ...(node.host === undefined ? {} : { host: node.host }) };
}

function sameServer(value: string, server: string): boolean {
  try {
    return parseServerUrl(value) === server;
  } catch {
    return false;
  }
}

/** Whom to ask and as whom: the node's configuration when there is one, else the network configuration's. */
function endpointAndTokenOf(raw: Json, node: NodeConfig | undefined): { server: string; socket?: string; token?: string; tokenFile: string; host: string } {
  if (node) {
    const { host, ...endpoint } = nodeEndpointOf(raw, node);
    return { ...endpoint, host: host ?? hostOf(raw) };
  }
  return { ...endpointOf(raw), ...tokenOf(raw), host: hostOf(raw) };
}

export function parseConfig(stdin: string, node?: NodeConfig): PluginConfig {
  const raw = parseJson(stdin);
  const cniVersion = parseVersion(raw);
  // First: a network configuration that redirects the plugin is refused before anything else is looked at.
  const endpoint = endpointAndTokenOf(raw, node);
  rejectDelegatedIpam(raw);
  return {
    cniVersion,
    name: cniNameOf(raw),
    type: requiredString(raw, 'type'),
    network: requiredString(raw, 'network'),
    ...endpoint,
    deviceID: deviceIdOf(raw),
    ...capabilitiesOf(raw.runtimeConfig as Json | undefined),
    validAttachments: validAttachmentsOf(raw),
    timeoutSeconds: timeoutOf(raw.timeoutSeconds),
    hostBackend: optionalString(raw, 'hostBackend') ?? 'linux',
    ...(raw.prevResult === undefined ? {} : { prevResult: raw.prevResult }),
  };
}

/**
 * DEL's configuration: only what finds and releases the attachment. Any
 * well-formed cniVersion (a newer one included), and no deviceID, IPAM or
 * capability check: a runtime tears pods down with the configuration it has
 * now, which may have changed since their ADD. An invalid `timeoutSeconds`
 * falls back to the default rather than leave the VF held. The node
 * configuration's rule holds here too: DEL sends the node's token as well.
 */
export function parseDelConfig(stdin: string, node?: NodeConfig): DelConfig {
  const raw = parseJson(stdin);
  const v = raw.cniVersion;
  if (typeof v !== 'string' || !SEMVER.test(v)) throw new CniError(CniCode.INCOMPATIBLE_VERSION, `cniVersion must be a version like 1.1.0, got ${JSON.stringify(v)}`);
  const network = typeof raw.network === 'string' && raw.network !== '' ? raw.network : undefined;
  const timeoutSeconds = isTimeoutSeconds(raw.timeoutSeconds) ? raw.timeoutSeconds : DEFAULT_TIMEOUT_SECONDS;
  const endpoint = endpointAndTokenOf(raw, node);
  return { cniVersion: v, name: cniNameOf(raw), ...(network ? { network } : {}), ...endpoint, timeoutSeconds };
}

function cniNameOf(raw: Json): string {
  const name = raw.name;
  if (name === undefined) throw configError('"name" is required in the network configuration');
  if (!isCniNetworkName(name)) throw configError(`"name" must be 1-253 of A-Z a-z 0-9 _ . - starting with a letter or digit, got ${JSON.stringify(name)}`);
  return name;
}

function hostOf(raw: Json): string {
  return optionalString(raw, 'host', HOST_NAME) ?? hostname();
}

/**
 * The `mac` and `ips` capabilities. Checked here for form; the daemon checks
 * the rest (MAC free, addresses in the pool and free) and refuses, never ignores.
 */
function capabilitiesOf(runtimeConfig: Json | undefined): Pick<PluginConfig, 'mac' | 'ips'> {
  const out: Pick<PluginConfig, 'mac' | 'ips'> = {};
  const mac = runtimeConfig?.mac;
  if (mac !== undefined) {
    if (typeof mac !== 'string') throw configError(`runtimeConfig.mac must be a MAC address string, got ${JSON.stringify(mac)}`);
    out.mac = validated(CniCode.INVALID_CONFIG, () => parseMac(mac));
  }
  const ips = runtimeConfig?.ips;
  if (ips !== undefined) {
    if (!Array.isArray(ips) || ips.some((ip) => typeof ip !== 'string')) throw configError(`runtimeConfig.ips must be a list of addresses, got ${JSON.stringify(ips)}`);
    out.ips = (ips as string[]).map(ipOf);
  }
  return out;
}

// An address from the `ips` capability: `A.B.C.D/P`, or bare (the pool's prefix is added at ADD). IPv4 only: vfleet's pools are.
function ipOf(value: string): string {
  const ip = validated(CniCode.INVALID_CONFIG, () => (value.includes('/') ? parseCidr(value) : parseIp(value)));
  if (ip.includes(':')) throw new CniError(CniCode.UNSUPPORTED_FIELD, `runtimeConfig.ips: ${value} is IPv6; vfleet network pools are IPv4 only`);
  return ip;
}

/** GC's list; absent or null (cnitool's GC sends none) means no attachment is still valid. */
function validAttachmentsOf(raw: Json): ValidAttachment[] {
  // libcni also sends it as `cni.dev/attachments`, the name an early spec text used.
  const list = raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments'];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw configError(`"cni.dev/valid-attachments" must be a list, got ${JSON.stringify(list).slice(0, 80)}`);
  return list.map((entry: unknown, i) => {
    const e = entry as Partial<ValidAttachment> | null;
    if (typeof e?.containerID !== 'string' || typeof e.ifname !== 'string') {
      throw configError(`"cni.dev/valid-attachments"[${i}] must be { "containerID": string, "ifname": string }, got ${JSON.stringify(entry).slice(0, 80)}`);
    }
    return { containerID: e.containerID, ifname: e.ifname };
  });
}

function requiredString(raw: Json, field: string, pattern?: RegExp): string {
  const value = optionalString(raw, field, pattern);
  if (value === undefined) throw configError(`"${field}" is required in the network configuration`);
  return value;
}

function optionalString(raw: Json, field: string, pattern?: RegExp): string | undefined {
  const value = raw[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '' || (pattern && !pattern.test(value))) {
    throw configError(`"${field}" must be ${pattern ? `a string matching ${pattern}` : 'a non-empty string'}, got ${JSON.stringify(value)}`);
  }
  return value;
}

// Addresses come from the vfleet network's pool; a delegated IPAM plugin would hand out a second, conflicting set.
function rejectDelegatedIpam(raw: Json): void {
  const ipam = raw.ipam as Json | undefined;
  if (ipam && typeof ipam === 'object' && ipam.type !== undefined) {
    throw new CniError(CniCode.UNSUPPORTED_FIELD, 'vfleet-cni does not delegate to an IPAM plugin ("ipam"); give the vfleet network an IP pool instead');
  }
}

function endpointOf(raw: Json): { server: string; socket?: string } {
  const server = optionalString(raw, 'server');
  const socket = optionalString(raw, 'socket');
  if (server !== undefined && socket !== undefined) throw configError('give either "server" or "socket", not both');
  if (socket !== undefined) {
    if (!socket.startsWith('/')) throw configError(`"socket" must be an absolute path, got "${socket}"`);
    return { server: 'http://localhost', socket };
  }
  return { server: parseServerUrl(server ?? DEFAULT_SERVER) };
}

function parseServerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(`"server" must be a URL like ${DEFAULT_SERVER}, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(`"server" must be an http or https URL, got "${value}"`);
  return url.href.replace(/\/+$/, '');
}

function tokenOf(raw: Json): { token?: string; tokenFile: string } {
  const token = optionalString(raw, 'token');
  const tokenFile = optionalString(raw, 'tokenFile') ?? DEFAULT_TOKEN_FILE;
  if (!tokenFile.startsWith('/')) throw configError(`"tokenFile" must be an absolute path, got "${tokenFile}"`);
  return token === undefined ? { tokenFile } : { token, tokenFile };
}

/**
 * A device plugin's VF reaches us in one of three places, depending on the
 * meta-plugin: top-level `deviceID` (Multus), `runtimeConfig.deviceID`
 * (the capability), or `args.cni.deviceID`. They must agree.
 */
function deviceIdOf(raw: Json): string | undefined {
  const runtimeConfig = raw.runtimeConfig as Json | undefined;
  const cniArgs = (raw.args as { cni?: Json } | undefined)?.cni;
  const found = [raw.deviceID, runtimeConfig?.deviceID, cniArgs?.deviceID].filter((v) => v !== undefined && v !== '');
  const addresses = new Set(found.map((v) => validated(CniCode.INVALID_CONFIG, () => parsePciAddress(String(v)))));
  if (addresses.size > 1) throw configError(`conflicting deviceIDs ${[...addresses].join(', ')}`);
  return addresses.values().next().value;
}

const isTimeoutSeconds = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 3600;

function timeoutOf(value: unknown): number {
  if (value === undefined) return DEFAULT_TIMEOUT_SECONDS;
  if (!isTimeoutSeconds(value)) throw configError(`"timeoutSeconds" must be a whole number of seconds between 1 and 3600, got ${JSON.stringify(value)}`);
  return value;
}
