/**
 * The device plugin's pool file (`sriovd --device-plugin pools.yaml`): which
 * VFs of this host each extended resource offers. Validated in full before
 * anything registers with the kubelet; every refusal names the file, the line
 * and the field (`pools.yaml:12: pools[1].pfNames[0]: ...`).
 */
import { readFile, stat } from 'node:fs/promises';
import { z } from 'zod';
import { SriovError, invalid } from '../host/errors.js';
import { parseDriverName, parseIfName, shown } from '../host/validate.js';
import { Positions, readYamlAs, type Path } from '../policy/schema.js';
import type { DeviceType } from '../domain/types.js';

export const DEFAULT_RESOURCE_PREFIX = 'vfleet.io';
export const DEFAULT_BANDWIDTH_UNIT_MBPS = 100;
/** The kubelet's own directory for device plugin sockets. */
export const DEFAULT_KUBELET_DIR = '/var/lib/kubelet/device-plugins';
const MAX_VF_INDEX = 255;
const BW_SUFFIX = '-bw';

/** A PF by netdev name, optionally only VFs `from`..`to` of it (`ens1f0#0-7`). */
export interface PfNameSelector {
  pf: string;
  vfs: { from: number; to: number } | null;
  /** Where it is written, for the refusal of a PF this host does not have. */
  line?: number | null;
}

export interface Pool {
  name: string;
  network: string;
  physnet?: string;
  vendor?: string;
  device?: string;
  driver?: string;
  pfNames?: PfNameSelector[];
  /** Absent: the network's. */
  deviceType?: DeviceType;
  redundancy: boolean;
  placement: 'pack' | 'spread';
  /** `<prefix>/<name>` and `<prefix>/<name>-bw`. */
  resourceName: string;
  bandwidthResourceName: string;
  /** Allocate's variables, derived once here so that collisions are refused up front. */
  env: PoolEnv;
}

export interface PoolEnv {
  /** PCIDEVICE_<RESOURCE>: the VFs' BDFs, comma-separated. */
  devices: string;
  /** PCIDEVICE_<RESOURCE>_INFO: JSON per BDF, as the reference device plugin writes it. */
  info: string;
  /** VFLEET_<POOL>_BW_UNITS and VFLEET_<POOL>_BW_UNIT_MBPS: bandwidth units given to the container. */
  bwUnits: string;
  bwUnitMbps: string;
}

export interface PoolConfig {
  /** The file, as named in refusals. */
  source: string;
  resourcePrefix: string;
  bandwidthUnitMbps: number;
  pools: Pool[];
}

// ---- Kubernetes names ------------------------------------------------------------

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** The name part of a qualified name (k8s.io/apimachinery validation.IsQualifiedName). */
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const QUALIFIED_NAME_MAX = 63;
/**
 * The kubelet also checks `requests.<resource>` is a qualified name (quota
 * names every extended resource so): its prefix must then fit 253.
 */
const PREFIX_MAX = 253 - 'requests.'.length;

function checkPrefix(prefix: string): string {
  if (prefix.length > PREFIX_MAX || !DNS_SUBDOMAIN.test(prefix)) {
    throw invalid(`${shown(prefix)} is not a DNS subdomain of at most ${PREFIX_MAX} characters (lower-case letters, digits, '-' and '.', like vfleet.io)`);
  }
  // The kubelet takes any name containing "kubernetes.io/" for one of its own resources, and refuses it as a device plugin's.
  if (prefix.endsWith('kubernetes.io')) throw invalid(`${shown(prefix)} is reserved by Kubernetes for its own resources; use your own domain, like vfleet.io`);
  if (prefix.startsWith('requests.')) throw invalid(`${shown(prefix)} starts with "requests.", which Kubernetes reserves for quotas`);
  return prefix;
}

/** The longest pool name: its `-bw` resource must fit Kubernetes' 63 too. */
export const MAX_POOL_NAME = QUALIFIED_NAME_MAX - BW_SUFFIX.length;

function checkPoolName(name: string): string {
  const max = MAX_POOL_NAME;
  if (!QUALIFIED_NAME.test(name) || name.length > max) {
    throw invalid(
      `${shown(name)} is not a resource name: 1-${max} letters, digits, '-', '_' and '.', starting and ending with a letter or digit (${max} so that ${shown(`${name.slice(0, 8)}…${BW_SUFFIX}`)} fits Kubernetes' 63 too)`,
    );
  }
  return name;
}

/** `vfleet.io/red-x` → `VFLEET_IO_RED_X`: every character that may not be in a variable name becomes `_`. */
export function envWord(text: string): string {
  return text.replace(/[^A-Za-z0-9]/g, '_').toUpperCase();
}

function envOf(resourceName: string, pool: string): PoolEnv {
  const devices = `PCIDEVICE_${envWord(resourceName)}`;
  return { devices, info: `${devices}_INFO`, bwUnits: `VFLEET_${envWord(pool)}_BW_UNITS`, bwUnitMbps: `VFLEET_${envWord(pool)}_BW_UNIT_MBPS` };
}

// ---- PF names with VF ranges -------------------------------------------------------

/** `ens1f0` or `ens1f0#0-7`. */
export function parsePfName(value: string): PfNameSelector {
  const hash = value.indexOf('#');
  if (hash < 0) return { pf: parseIfName(value), vfs: null };
  const pf = parseIfName(value.slice(0, hash));
  const m = /^(0|[1-9][0-9]{0,2})-(0|[1-9][0-9]{0,2})$/.exec(value.slice(hash + 1));
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (!m || from > to || to > MAX_VF_INDEX) {
    throw invalid(`${shown(value)} is not a VF range (FROM-TO, FROM ≤ TO, 0-${MAX_VF_INDEX}); write a PF name, optionally with its VFs, like ens1f0#0-7`);
  }
  return { pf, vfs: { from, to } };
}

// ---- the file ----------------------------------------------------------------------

const hex4 = z.string({ error: 'must be a 4-digit hex id' }).regex(/^[0-9a-fA-F]{4}$/, 'must be a 4-digit hex id like 8086');
/** A missing field is told apart from a wrong one. */
const required = (what: string, wrong: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? `is required: ${what}` : wrong) });
const vfleetName = z
  .string(required('the network whose VFs the pool offers', 'must be a name'))
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lower-case letters, digits and -, starting and ending with a letter or digit');
const text = (what: string) => z.string({ error: `${what} must be text` });
const ofType = (message: string) => ({ error: (issue: { code?: string }) => (issue.code === 'invalid_type' ? message : undefined) });

const poolSchema = z
  .object(
    {
      name: z.string(required('the pool name, which names the resource (vfleet.io/<name>)', 'must be text')),
      network: vfleetName,
      physnet: vfleetName.optional(),
      vendor: hex4.optional(),
      device: hex4.optional(),
      driver: text('driver').optional(),
      pfNames: z.array(text('a PF name'), { error: 'must be a list of PF names' }).optional(),
      deviceType: z.enum(['netdevice', 'vfio-pci'], { error: 'must be netdevice or vfio-pci' }).optional(),
      redundancy: z.boolean({ error: 'must be true or false' }).default(false),
      placement: z.enum(['pack', 'spread'], { error: 'must be pack or spread' }).default('pack'),
    },
    ofType('must be a map with name and network'),
  )
  .strict();

const fileSchema = z
  .object(
    {
      resourcePrefix: text('resourcePrefix').default(DEFAULT_RESOURCE_PREFIX),
      bandwidthUnitMbps: z
        .number({ error: 'must be a whole number of Mbps' })
        .int('must be a whole number of Mbps')
        .min(1, 'must be 1-100000 Mbps')
        .max(100_000, 'must be 1-100000 Mbps')
        .default(DEFAULT_BANDWIDTH_UNIT_MBPS),
      pools: z.array(poolSchema, { error: 'must be a list' }).min(1, 'lists no pool: name at least one (name and network)'),
    },
    ofType('must be a map with a pools list'),
  )
  .strict();

type RawPool = z.infer<typeof poolSchema>;

/** The pool file's pools; refusals name `source`, the line and the field. Nothing is registered from a refused file. */
export function parsePoolDocument(text: string, source = 'pool file'): PoolConfig {
  const at = new Positions(source, text);
  const file = readYamlAs(at, fileSchema);
  const resourcePrefix = at.at(['resourcePrefix'], () => checkPrefix(file.resourcePrefix));
  const pools = file.pools.map((p, i) => toPool(at, resourcePrefix, p, i));
  checkNames(at, pools);
  checkEnv(at, pools);
  checkOverlaps(at, pools);
  return { source, resourcePrefix, bandwidthUnitMbps: file.bandwidthUnitMbps, pools };
}

/**
 * `--kubelet-dir`: a directory, or nothing yet (the kubelet not started: the
 * plugin waits for it). Anything else there is refused at start, or the plugin
 * would wait for a kubelet.sock that can never appear.
 */
export async function checkKubeletDir(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => null);
  if (st && !st.isDirectory()) {
    throw invalid(`--kubelet-dir ${shown(dir, 200)} is not a directory; name the kubelet's device plugin directory (default ${DEFAULT_KUBELET_DIR})`, dir);
  }
}

/** A pool file of many pools is a few KB: anything near this is not one. */
export const POOL_FILE_MAX_BYTES = 1024 * 1024;

/** Reads and parses the file named on the command line: a regular file of at most POOL_FILE_MAX_BYTES (a device such as /dev/zero would never end). */
export async function readPoolFile(path: string): Promise<PoolConfig> {
  let text: string;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw invalid(`the pool file ${shown(path, 200)} is not a regular file (a directory or device); name the YAML file of pools`, path);
    if (st.size > POOL_FILE_MAX_BYTES) {
      throw invalid(`the pool file ${shown(path, 200)} is ${(st.size / 2 ** 20).toFixed(1)} MB, above the ${POOL_FILE_MAX_BYTES / 2 ** 20} MB a pool file may be; name the YAML file of pools`, path);
    }
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof SriovError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SriovError(code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_ARGUMENT', `cannot read the pool file ${shown(path, 200)}: ${code ?? String(err)}`, {
      object: path,
      cause: err,
    });
  }
  return parsePoolDocument(text, path);
}

function toPool(at: Positions, prefix: string, p: RawPool, i: number): Pool {
  const base: Path = ['pools', i];
  const name = at.at([...base, 'name'], () => checkPoolName(p.name));
  const resourceName = `${prefix}/${name}`;
  return {
    name,
    network: p.network,
    physnet: p.physnet,
    vendor: p.vendor?.toLowerCase(),
    device: p.device?.toLowerCase(),
    driver: p.driver === undefined ? undefined : at.at([...base, 'driver'], () => parseDriverName(p.driver!)),
    pfNames: p.pfNames?.map((v, j) => ({ ...at.at([...base, 'pfNames', j], () => parsePfName(v)), line: at.lineOf([...base, 'pfNames', j]) })),
    deviceType: p.deviceType,
    redundancy: p.redundancy,
    placement: p.placement,
    resourceName,
    bandwidthResourceName: `${resourceName}${BW_SUFFIX}`,
    env: envOf(resourceName, name),
  };
}

/** Each pool's resource, and its bandwidth resource, is its own: `red-bw` can't be a pool beside `red`. */
function checkNames(at: Positions, pools: Pool[]): void {
  const owner = new Map<string, string>();
  for (const [i, p] of pools.entries()) {
    for (const [resource, what] of [
      [p.resourceName, `pools[${i}]`],
      [p.bandwidthResourceName, `the bandwidth resource of pools[${i}]`],
    ] as const) {
      const first = owner.get(resource);
      if (first !== undefined) throw at.refuse(['pools', i, 'name'], `resource ${resource} is already ${first}; give each pool its own name (a pool named X-bw collides with pool X's bandwidth)`);
      owner.set(resource, what);
    }
  }
}

/** The kubelet merges every resource's variables into one container: derived names must differ (`red-x` and `red_x` do not). */
function checkEnv(at: Positions, pools: Pool[]): void {
  const owner = new Map<string, number>();
  for (const [i, p] of pools.entries()) {
    for (const variable of Object.values(p.env)) {
      const first = owner.get(variable);
      if (first !== undefined && first !== i) {
        throw at.refuse(['pools', i, 'name'], `environment variable ${variable} would also be pools[${first}]'s (${pools[first]!.name}); rename one of the pools`);
      }
      owner.set(variable, i);
    }
  }
}

/**
 * Refuses two pools that can select the same VF, as far as the file alone
 * tells (networks' physnets are the controller's and may change):
 * - on the same network, unless something static keeps them apart (different
 *   physnet, device type, vendor or device selectors, or pfNames on both whose
 *   ranges are disjoint): the same VF would be two resources of one network;
 * - on different networks, when both carve VFs out by pfNames and the ranges
 *   meet on one PF (and nothing static keeps them apart): two explicit carvings
 *   of one VF are a mistake in the file.
 * Pools of different networks without pfNames share their physnet's VFs by
 * design, as vfleet's networks do: the controller gives a VF to one allocation
 * only, and a VF held for one pool shows Unhealthy in the others.
 */
function checkOverlaps(at: Positions, pools: Pool[]): void {
  for (let j = 1; j < pools.length; j++) {
    for (let i = 0; i < j; i++) {
      const a = pools[i]!;
      const b = pools[j]!;
      if (staticallyApart(a, b)) continue;
      const shared = sharedPfRange(a, b);
      if (a.network === b.network && shared !== 'disjoint') {
        const how = shared === 'unbounded' ? 'the same VFs' : `${shared}`;
        throw at.refuse(['pools', j], `pools ${a.name} and ${b.name} both select ${how} of network ${a.network}; split its VFs with disjoint pfNames ranges, or keep one pool`);
      }
      if (a.network !== b.network && shared !== 'disjoint' && shared !== 'unbounded') {
        throw at.refuse(['pools', j, 'pfNames'], `pools ${a.name} and ${b.name} both name ${shared} in pfNames; a VF belongs to one pool's range`);
      }
    }
  }
}

function staticallyApart(a: Pool, b: Pool): boolean {
  const differ = <T>(x: T | undefined, y: T | undefined) => x !== undefined && y !== undefined && x !== y;
  return differ(a.physnet, b.physnet) || differ(a.deviceType, b.deviceType) || differ(a.vendor, b.vendor) || differ(a.device, b.device);
}

/**
 * 'unbounded' when either pool names no pfNames (it may take any PF), else
 * the first VF both ranges cover (`ens1f0 VF 3`), or 'disjoint'.
 */
function sharedPfRange(a: Pool, b: Pool): string {
  if (!a.pfNames || !b.pfNames) return 'unbounded';
  for (const x of a.pfNames) {
    for (const y of b.pfNames) {
      if (x.pf !== y.pf) continue;
      const from = Math.max(x.vfs?.from ?? 0, y.vfs?.from ?? 0);
      const to = Math.min(x.vfs?.to ?? MAX_VF_INDEX, y.vfs?.to ?? MAX_VF_INDEX);
      if (from <= to) return `${x.pf} VF ${from}`;
    }
  }
  return 'disjoint';
}

/**
 * At start, against this host's inventory: a PF name that is not here is a
 * typo, refused with its line like any other mistake in the file.
 */
export function checkPoolsOnHost(config: PoolConfig, inventory: { pfs: Array<{ name: string }> }): void {
  const here = new Set(inventory.pfs.map((pf) => pf.name));
  for (const [i, p] of config.pools.entries()) {
    for (const [j, sel] of (p.pfNames ?? []).entries()) {
      if (here.has(sel.pf)) continue;
      const known = [...here].sort().join(', ') || 'none';
      throw invalid(`${config.source}${sel.line == null ? '' : `:${sel.line}`}: pools[${i}].pfNames[${j}]: PF ${sel.pf} is not on this host (its SR-IOV PFs: ${known})`, config.source);
    }
  }
}
