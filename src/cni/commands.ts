/**
 * The CNI commands. The daemon does the work (allocate, configure, move the
 * netdev, release); the plugin asks for it, waits, and reports in CNI's
 * terms. An attachment is (host, container id, ifname, CNI network `name`),
 * CNI's GC key: ADD, CHECK and DEL act on that one only, and ADD and DEL are
 * idempotent on it, so a runtime that retries after a timeout, or DELs after
 * a failed ADD, converges instead of leaking VFs or taking another network's.
 */
import { readFileSync } from 'node:fs';
import { isAttachment, type AttachmentKey } from '../domain/cni-attachment.js';
import { HOLDING_STATES, type Allocation, type Network } from '../domain/types.js';
import { check } from './check.js';
import { ApiClient } from './client.js';
import {
  SUPPORTED_VERSIONS,
  loadNodeConfig,
  parseCommand,
  parseConfig,
  parseContainerEnv,
  parseDelConfig,
  type CniCommand,
  type ContainerEnv,
  type DelConfig,
  type Endpoint,
  type PluginConfig,
} from './config.js';
import { CniCode, CniError } from './errors.js';
import { appendTo, resultFor, type CniResult } from './result.js';
import { Sriovd, type AllocationRequest, type ContainerAllocation } from './sriovd.js';

const VERSION_INFO = { cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] };

// STATUS is polled by runtimes; a hung daemon must not hang them for the full ADD budget.
const STATUS_TIMEOUT_SECONDS = 5;

/** States an ADD waits out before the VF is in the container. */
const SETTLING = ['pending', 'configured'] as const;

/** Runs the call `env` asks for; returns what to print (nothing for DEL, CHECK, STATUS and GC). */
export async function runCommand(env: NodeJS.ProcessEnv, stdin: string): Promise<object | void> {
  const command = parseCommand(env);
  if (command === 'VERSION') return VERSION_INFO;
  // Read before the network configuration, which may not override what it sets (server, tokenFile, host).
  const node = loadNodeConfig(env);
  if (command === 'DEL') {
    const config = parseDelConfig(stdin, node);
    const container = parseContainerEnv(env, command);
    return withSriovd(config, config.timeoutSeconds, (d) => del(d, config, container));
  }
  const config = parseConfig(stdin, node);
  if (command === 'STATUS') return status(config);
  if (command === 'GC') return withSriovd(config, config.timeoutSeconds, (d) => gc(d, config));
  const container = parseContainerEnv(env, command);
  return withSriovd<CniResult | void>(config, config.timeoutSeconds, (d) => (command === 'ADD' ? add(d, config, container) : check(d, config, container)));
}

async function withSriovd<T>(config: Endpoint, timeoutSeconds: number, fn: (d: Sriovd) => Promise<T>): Promise<T> {
  const client = new ApiClient({ server: config.server, socket: config.socket, token: readToken(config) });
  try {
    return await fn(new Sriovd(client, Date.now() + timeoutSeconds * 1000));
  } finally {
    client.close();
  }
}

function readToken(config: Endpoint): string {
  if (config.token !== undefined) return config.token;
  let token: string;
  try {
    token = readFileSync(config.tokenFile, 'utf8').trim();
  } catch (e) {
    throw new CniError(CniCode.IO_FAILURE, `cannot read the sriovd token from ${config.tokenFile}: ${(e as Error).message}`);
  }
  if (!token) throw new CniError(CniCode.IO_FAILURE, `the token file ${config.tokenFile} is empty`);
  return token;
}

const keyOf = (config: PluginConfig | DelConfig, c: Pick<ContainerEnv, 'containerId' | 'ifname'>): AttachmentKey => ({
  host: config.host,
  containerId: c.containerId,
  ifname: c.ifname,
  cniNetwork: config.name,
  ...(config.network ? { network: config.network } : {}),
});

/** Commands that require a newer spec than the configuration's. */
function requireVersion(config: PluginConfig, command: CniCommand): void {
  if (config.cniVersion !== '1.1.0') {
    throw new CniError(CniCode.INCOMPATIBLE_VERSION, `${command} needs cniVersion 1.1.0, the configuration says ${config.cniVersion}`);
  }
}

// ---- ADD ----------------------------------------------------------------------

async function add(d: Sriovd, config: PluginConfig, c: ContainerEnv): Promise<CniResult> {
  const network = await d.network(config.network);
  const attached = await attach(d, config, c, network);
  return appendTo(config.prevResult, resultFor(attached, network, config.cniVersion));
}

async function attach(d: Sriovd, config: PluginConfig, c: ContainerEnv, network: Network): Promise<ContainerAllocation> {
  const a = (await existingAttachment(d, config, c)) ?? (await create(d, requestFor(config, c, network)));
  const settled = await d.waitWhile(a.id, SETTLING);
  if (settled.state === 'attached') return settled;
  // `failed`: the daemon has already rolled the VF back; anything else means a DEL overtook us.
  throw new CniError(CniCode.ATTACH_FAILED, `attaching ${config.network} as ${c.ifname} failed: ${settled.reason ?? `allocation ${a.id} is ${settled.state}`}`);
}

/**
 * A retried ADD finds the allocation the first one made; one being released
 * is waited out. The interface held by another CNI network or namespace is a
 * conflict: two networks cannot both be this container's `ifname`.
 */
async function existingAttachment(d: Sriovd, config: PluginConfig, c: ContainerEnv): Promise<ContainerAllocation | undefined> {
  const held = (await d.interfaceAllocations(c.containerId, c.ifname, config.host)).filter((a) => HOLDING_STATES.includes(a.state));
  const live = held.find((a) => a.state !== 'releasing');
  if (live) {
    if (!isAttachment(live, keyOf(config, c)) || live.network !== config.network || live.attachment.netns !== c.netns) {
      const cni = live.attachment.cniNetwork ? `CNI network ${live.attachment.cniNetwork}, ` : '';
      throw new CniError(CniCode.CONFLICT, `${c.ifname} of container ${c.containerId} is already allocation ${live.id} (${cni}network ${live.network}, namespace ${live.attachment.netns})`);
    }
    checkCapabilities(live, config);
    return live;
  }
  // The interface name stays taken in the namespace until the old VF is detached.
  for (const a of held) await d.waitWhile(a.id, HOLDING_STATES);
  return undefined;
}

/** A retried ADD whose runtimeConfig asks for another MAC or other addresses than it got is not the same ADD. */
function checkCapabilities(a: ContainerAllocation, config: PluginConfig): void {
  if (config.mac !== undefined && config.mac !== a.mac) {
    throw new CniError(CniCode.CONFLICT, `runtimeConfig.mac is ${config.mac}, but ${a.attachment.ifname} is already allocation ${a.id} with MAC ${a.mac}`);
  }
  const want = config.ips ?? [];
  if (want.length && !want.every((ip) => a.attachment.ips.some((held) => held === ip || held.startsWith(`${ip}/`)))) {
    throw new CniError(CniCode.CONFLICT, `runtimeConfig.ips is [${want.join(', ')}], but ${a.attachment.ifname} is already allocation ${a.id} with [${a.attachment.ips.join(', ')}]`);
  }
}

/** The daemon's refusal of a capability names it, so the runtime's user sees which value to fix. */
async function create(d: Sriovd, request: AllocationRequest): Promise<ContainerAllocation> {
  try {
    return await d.create(request);
  } catch (e) {
    const asked = [request.mac ? `runtimeConfig.mac ${request.mac}` : '', request.attach.ips ? `runtimeConfig.ips [${request.attach.ips.join(', ')}]` : ''].filter(Boolean);
    if (!(e instanceof CniError) || asked.length === 0 || (e.code !== CniCode.REJECTED && e.code !== CniCode.CONFLICT)) throw e;
    throw new CniError(e.code, `cannot honour ${asked.join(' and ')}: ${e.message}`, e.details);
  }
}

function requestFor(config: PluginConfig, c: ContainerEnv, network: Network): AllocationRequest {
  const ips = config.ips?.map((ip) => withPrefix(ip, network));
  return {
    network: config.network,
    workload: { kind: 'container', name: c.containerId },
    host: config.host,
    ...(config.deviceID ? { pciAddress: config.deviceID } : {}),
    ...(config.mac ? { mac: config.mac } : {}),
    attach: { kind: 'container', netns: c.netns, ifname: c.ifname, cniNetwork: config.name, ...(ips ? { ips } : {}) },
  };
}

/** A bare address from the `ips` capability gets the prefix of the network's pool. */
function withPrefix(ip: string, network: Network): string {
  if (ip.includes('/')) return ip;
  if (!network.ipam) throw new CniError(CniCode.INVALID_CONFIG, `runtimeConfig.ips: ${ip} has no prefix length and network ${network.name} has no IP pool to take one from; give ${ip}/PREFIX`);
  return `${ip}/${network.ipam.cidr.split('/')[1]}`;
}

// ---- DEL ----------------------------------------------------------------------

/**
 * Releases this attachment only. Nothing there is success: DEL may come
 * twice, after an ADD that never got far, or after one that failed because
 * another network holds the interface (whose VF must stay). A failed
 * allocation of the attachment is cleared.
 */
async function del(d: Sriovd, config: DelConfig, c: ContainerEnv): Promise<void> {
  const key = keyOf(config, c);
  const ours = (await d.interfaceAllocations(c.containerId, c.ifname, config.host)).filter((a) => isAttachment(a, key));
  const failures: string[] = [];
  for (const a of ours) {
    if (a.state === 'failed' || (HOLDING_STATES.includes(a.state) && a.state !== 'releasing')) await d.release(a.id);
    if (!HOLDING_STATES.includes(a.state)) continue;
    const settled = await d.waitWhile(a.id, HOLDING_STATES);
    if (settled.state === 'failed') failures.push(`releasing ${c.ifname} (allocation ${a.id}) failed: ${settled.reason ?? 'no reason given'}`);
  }
  if (failures.length) throw new CniError(CniCode.ATTACH_FAILED, failures[0]!, failures.join('; '));
}

// ---- STATUS -------------------------------------------------------------------

/**
 * Ready when an ADD could work now: the token is readable and accepted, the
 * daemon answers, and this host has a free VF for the network (50 if not).
 * 51 when this host's agent is not reporting: then existing attachments are
 * not kept either (no repair, no re-creation after a VF reset).
 */
async function status(config: PluginConfig): Promise<void> {
  requireVersion(config, 'STATUS');
  let capacity;
  try {
    capacity = await withSriovd(config, Math.min(config.timeoutSeconds, STATUS_TIMEOUT_SECONDS), (d) => d.capacity(config.network, config.host));
  } catch (e) {
    throw new CniError(CniCode.NOT_AVAILABLE, `vfleet is not available: ${(e as Error).message}`);
  }
  if (capacity.hostState !== 'ready') {
    throw new CniError(CniCode.NOT_AVAILABLE_LIMITED, `host ${config.host} is ${capacity.hostState} to sriovd: its agent is not reporting, so no ADD is served and existing attachments are not maintained`);
  }
  if (capacity.freeVfs === 0) {
    throw new CniError(CniCode.NOT_AVAILABLE, `host ${config.host} has no free VF for network ${config.network}; release one or add VFs (numVfs) to its physnet's PFs`);
  }
}

// ---- GC -----------------------------------------------------------------------

/**
 * Releases every allocation on this host that this CNI network made and the
 * runtime no longer lists. Other CNI networks' attachments, and allocations
 * made before attachments recorded their CNI network, are never touched.
 * Keeps going past a failure and reports them all at the end.
 */
async function gc(d: Sriovd, config: PluginConfig): Promise<void> {
  requireVersion(config, 'GC');
  const valid = new Set(config.validAttachments.map((v) => `${v.containerID}\n${v.ifname}`));
  const stale = (await d.onHost(config.host)).filter((a) => isStale(a, config.name, valid));
  const failures: string[] = [];
  for (const a of stale) {
    try {
      await d.release(a.id);
    } catch (e) {
      failures.push(`allocation ${a.id}: ${(e as Error).message}`);
    }
  }
  for (const a of stale.filter((x) => HOLDING_STATES.includes(x.state))) {
    try {
      const settled = await d.waitWhile(a.id, HOLDING_STATES);
      if (settled.state === 'failed') failures.push(`allocation ${a.id}: ${settled.reason ?? 'release failed'}`);
    } catch (e) {
      failures.push(`allocation ${a.id}: ${(e as Error).message}`);
    }
  }
  if (failures.length) throw new CniError(CniCode.ATTACH_FAILED, `GC released ${stale.length - failures.length} of ${stale.length} stale attachments; ${failures[0]}`, failures.join('; '));
}

function isStale(a: Allocation, cniNetwork: string, valid: Set<string>): boolean {
  const at = a.attachment;
  if (at?.kind !== 'container' || at.cniNetwork !== cniNetwork || a.workload.kind !== 'container') return false;
  if (a.state !== 'failed' && (!HOLDING_STATES.includes(a.state) || a.state === 'releasing')) return false;
  return !valid.has(`${a.workload.name}\n${at.ifname}`);
}
