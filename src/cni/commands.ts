/**
 * The CNI commands. The daemon does the work (allocate, configure, move the
 * netdev, release); the plugin asks for it, waits, and reports in CNI's
 * terms. ADD and DEL are idempotent by (container id, interface name), so
 * a runtime that retries after a timeout converges instead of leaking VFs.
 */
import { readFileSync } from 'node:fs';
import { HOLDING_STATES } from '../domain/types.js';
import { check } from './check.js';
import { ApiClient } from './client.js';
import { SUPPORTED_VERSIONS, parseCommand, parseConfig, parseContainerEnv, type CniCommand, type ContainerEnv, type PluginConfig } from './config.js';
import { CniCode, CniError } from './errors.js';
import { appendTo, resultFor, type CniResult } from './result.js';
import { Sriovd, type AllocationRequest, type ContainerAllocation } from './sriovd.js';

const VERSION_INFO = { cniVersion: '1.0.0', supportedVersions: [...SUPPORTED_VERSIONS] };

// STATUS is polled by runtimes; a hung daemon must not hang them for the full ADD budget.
const STATUS_TIMEOUT_SECONDS = 5;

type ContainerCommand = (d: Sriovd, config: PluginConfig, c: ContainerEnv) => Promise<CniResult | void>;
const CONTAINER_COMMANDS: Record<Exclude<CniCommand, 'STATUS' | 'VERSION'>, ContainerCommand> = { ADD: add, DEL: del, CHECK: check };

/** Runs the call `env` asks for; returns what to print (nothing for DEL, CHECK and STATUS). */
export async function runCommand(env: NodeJS.ProcessEnv, stdin: string): Promise<object | void> {
  const command = parseCommand(env);
  if (command === 'VERSION') return VERSION_INFO;
  const config = parseConfig(stdin);
  if (command === 'STATUS') return status(config);
  const container = parseContainerEnv(env, command);
  return withSriovd(config, config.timeoutSeconds, (d) => CONTAINER_COMMANDS[command](d, config, container));
}

async function withSriovd<T>(config: PluginConfig, timeoutSeconds: number, fn: (d: Sriovd) => Promise<T>): Promise<T> {
  const client = new ApiClient({ server: config.server, socket: config.socket, token: readToken(config) });
  try {
    return await fn(new Sriovd(client, Date.now() + timeoutSeconds * 1000));
  } finally {
    client.close();
  }
}

function readToken(config: PluginConfig): string {
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

// ---- ADD ----------------------------------------------------------------------

async function add(d: Sriovd, config: PluginConfig, c: ContainerEnv): Promise<CniResult> {
  const attached = await attach(d, config, c);
  const network = await d.network(attached.network);
  return appendTo(config.prevResult, resultFor(attached, network, config.cniVersion));
}

async function attach(d: Sriovd, config: PluginConfig, c: ContainerEnv): Promise<ContainerAllocation> {
  const a = (await existingAttachment(d, config, c)) ?? (await d.create(requestFor(config, c)));
  const settled = await d.waitFor(a.id, (x) => x.state !== 'pending' && x.state !== 'configured');
  if (settled.state === 'attached') return settled;
  // `failed`: the daemon has already rolled the VF back; anything else means a DEL overtook us.
  throw new CniError(CniCode.ATTACH_FAILED, `attaching ${config.network} as ${c.ifname} failed: ${settled.reason ?? `allocation ${a.id} is ${settled.state}`}`);
}

/** A retried ADD finds the allocation the first one made; one being released is waited out. */
async function existingAttachment(d: Sriovd, config: PluginConfig, c: ContainerEnv): Promise<ContainerAllocation | undefined> {
  const held = await d.holding(c.containerId, c.ifname, config.host);
  const live = held.find((a) => a.state !== 'releasing');
  if (live) {
    if (live.network !== config.network || live.attachment.netns !== c.netns) {
      throw new CniError(CniCode.CONFLICT, `${c.ifname} of container ${c.containerId} is already allocation ${live.id} (network ${live.network}, namespace ${live.attachment.netns})`);
    }
    return live;
  }
  // The interface name stays taken in the namespace until the old VF is detached.
  for (const a of held) await d.waitFor(a.id, (x) => !HOLDING_STATES.includes(x.state));
  return undefined;
}

function requestFor(config: PluginConfig, c: ContainerEnv): AllocationRequest {
  return {
    network: config.network,
    workload: { kind: 'container', name: c.containerId },
    host: config.host,
    ...(config.deviceID ? { pciAddress: config.deviceID } : {}),
    attach: { kind: 'container', netns: c.netns, ifname: c.ifname },
  };
}

// ---- DEL ----------------------------------------------------------------------

/** Nothing held is success: DEL may come twice, or for an ADD that never got far. */
async function del(d: Sriovd, config: PluginConfig, c: ContainerEnv): Promise<void> {
  for (const a of await d.holding(c.containerId, c.ifname, config.host)) {
    if (a.state !== 'releasing') await d.release(a.id);
    const settled = await d.waitFor(a.id, (x) => !HOLDING_STATES.includes(x.state));
    if (settled.state === 'failed') {
      throw new CniError(CniCode.ATTACH_FAILED, `releasing ${c.ifname} (allocation ${a.id}) failed: ${settled.reason ?? 'no reason given'}`);
    }
  }
}

// ---- STATUS -------------------------------------------------------------------

/** Ready when ADD could work: the token is readable and the daemon answers. */
async function status(config: PluginConfig): Promise<void> {
  try {
    await withSriovd(config, Math.min(config.timeoutSeconds, STATUS_TIMEOUT_SECONDS), (d) => d.healthz());
  } catch (e) {
    throw new CniError(CniCode.NOT_AVAILABLE, `vfleet is not available: ${(e as Error).message}`);
  }
}
