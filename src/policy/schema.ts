/**
 * The node policy file (`sriovctl host apply -f`): YAML, validated in full
 * before anything is planned, so a bad file changes nothing. Every refusal
 * names the file, the line and the field (`policy.yaml:7: policies[0].numVfs: ...`).
 */
import { LineCounter, parseDocument, visit, type Document } from 'yaml';
import { z } from 'zod';
import { SriovError, invalid } from '../host/errors.js';
import type { EswitchMode, VfSettings } from '../host/model.js';
import {
  ZERO_MAC,
  isDecimal,
  parseDriverName,
  parseIfName,
  parseIndexRanges,
  parseOnOff,
  parsePciAddress,
  parseVfSettings,
  shown,
  type RawVfSettings,
} from '../host/validate.js';

const onOff = z.union([z.boolean(), z.enum(['on', 'off'])], { error: 'must be on or off' });
const hex4 = z.string({ error: 'must be a 4-digit hex id' }).regex(/^[0-9a-fA-F]{4}$/, 'must be a 4-digit hex id like 8086');
const name = z
  .string({ error: 'must be a name' })
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lower-case letters, digits and -, starting and ending with a letter or digit');
const whole = (what: string) => z.number({ error: `${what} must be a whole number` }).int(`${what} must be a whole number`);
const text = (what: string) => z.string({ error: `${what} must be text` });
/** A message for a value of the wrong type only; other issues (an unknown key) keep zod's own words. */
const ofType = (message: string) => ({ error: (issue: { code?: string }) => (issue.code === 'invalid_type' ? message : undefined) });
const list = (what: string) => z.array(text(what), { error: `${what} must be a list` });

// Field values keep their own parsers (validate.ts) so the limits read the same everywhere.
const vfSettingsSchema = z
  .object(
    {
      mac: text('mac'),
      vlan: whole('vlan'),
      qos: whole('qos'),
      vlanProto: text('vlanProto'),
      maxTxRateMbps: whole('maxTxRateMbps'),
      minTxRateMbps: whole('minTxRateMbps'),
      spoofChk: onOff,
      trust: onOff,
      linkState: text('linkState'),
    },
    ofType('must be a map of VF settings (mac, vlan, qos, vlanProto, maxTxRateMbps, minTxRateMbps, spoofChk, trust, linkState)'),
  )
  .partial()
  .strict();

const policySchema = z
  .object(
    {
      name,
      selector: z
        .object(
          {
            pfNames: list('pfNames').optional(),
            pciAddresses: list('pciAddresses').optional(),
            vendor: hex4.optional(),
            device: hex4.optional(),
            drivers: list('drivers').optional(),
          },
          ofType('must be a map (pfNames, pciAddresses, vendor, device, drivers)'),
        )
        .strict(),
      numVfs: whole('numVfs').min(0, 'numVfs must be 0 (remove all VFs) or more'),
      deviceType: z.enum(['netdevice', 'vfio-pci'], { error: 'must be netdevice or vfio-pci' }).default('netdevice'),
      mtu: whole('mtu').min(68, 'mtu must be 68-65535').max(65535, 'mtu must be 68-65535').optional(),
      autoprobe: onOff.optional(),
      eswitchMode: z.enum(['switchdev', 'legacy'], { error: 'must be switchdev or legacy (leave it out to leave the mode alone)' }).optional(),
      physnet: name.optional(),
      vfs: z.record(z.string(), vfSettingsSchema, { error: 'must be a map of VF ranges (like 0-3) to settings' }).optional(),
    },
    ofType('must be a map with name, selector and numVfs'),
  )
  .strict();

const fileSchema = z.object({ policies: z.array(policySchema, { error: 'must be a list' }) }, ofType('must be a map with a policies list')).strict();

export interface PfSelector {
  pfNames?: string[];
  pciAddresses?: string[];
  vendor?: string;
  device?: string;
  drivers?: string[];
}

export interface NodePolicy {
  name: string;
  selector: PfSelector;
  numVfs: number;
  deviceType: 'netdevice' | 'vfio-pci';
  mtu?: number;
  autoprobe?: boolean;
  /** The PF's devlink eswitch mode; absent: left as it is. */
  eswitchMode?: EswitchMode;
  physnet?: string;
  /** VF index → settings, expanded from the file's ranges. */
  vfs: Map<number, VfSettings>;
}

export type Path = Array<string | number>;

/** Where each field of the document is, for messages (the pool file of the device plugin uses it too). */
export class Positions {
  private readonly lines = new LineCounter();
  readonly doc: Document;

  constructor(
    readonly source: string,
    readonly text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
  }

  lineAt(offset: number): number {
    return this.lines.linePos(offset).line;
  }

  /** The line of the deepest node of `path` that exists (a missing field: its parent's line). */
  lineOf(path: Path): number | null {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) return this.lineAt(node.range[0]);
    }
    return null;
  }

  /** `policy.yaml:7: policies[0].numVfs: <message>`, as INVALID_ARGUMENT. */
  refuse(path: Path, message: string): SriovError {
    const line = this.lineOf(path);
    const field = fieldName(path);
    return invalid(`${this.source}${line === null ? '' : `:${line}`}: ${field ? `${field}: ` : ''}${message}`, this.source);
  }

  /** Runs a field parser; its refusal gets this field's file, line and name. */
  at<T>(path: Path, parse: () => T): T {
    try {
      return parse();
    } catch (err) {
      if (err instanceof SriovError) throw this.refuse(path, err.message);
      throw err;
    }
  }
}

/** `policies[0].vfs["0-3"].vlan` */
function fieldName(path: Path): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? `${i ? '.' : ''}${p}` : `[${shown(p)}]`))
    .join('');
}

/**
 * YAML reads `010` as 10, `0x10` as 16 and `1e3` as 1000, where other tools
 * read octal or refuse: every number in a policy is written in decimal digits.
 */
function checkDecimals(at: Positions): void {
  visit(at.doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'number' || !node.range) return;
      const written = at.text.slice(node.range[0], node.range[1]);
      if (!isDecimal(written)) {
        throw invalid(
          `${at.source}:${at.lineAt(node.range[0])}: ${shown(written)} is not a decimal whole number (write decimal digits only: no leading zeros, 0x, exponent or sign)`,
          at.source,
        );
      }
    },
  });
}

/** The document as plain data, refused with its line when it is not YAML. */
function readYaml(at: Positions): unknown {
  const error = at.doc.errors[0];
  if (error) {
    throw invalid(`${at.source}:${at.lineAt(error.pos[0])}: not valid YAML: ${error.message.split('\n')[0]}`, at.source);
  }
  checkDecimals(at);
  try {
    return at.doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw invalid(`${at.source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`, at.source);
  }
}

/** A YAML document checked against `schema`; the first problem is refused with its line and field. */
export function readYamlAs<S extends z.ZodType>(at: Positions, schema: S): z.infer<S> {
  const result = schema.safeParse(readYaml(at));
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  // An unknown key: point at the key itself.
  const where = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...path, issue.keys[0]] : path;
  throw at.refuse(where, issue.message);
}

/** The policy file's policies; refusals name `source` (the file), the line and the field. */
export function parsePolicyDocument(text: string, source = 'policy file'): NodePolicy[] {
  const at = new Positions(source, text);
  const file = readYamlAs(at, fileSchema);
  const policies = file.policies.map((p, i) => toPolicy(at, p, i));
  const names = new Map<string, number>();
  for (const [i, p] of policies.entries()) {
    const first = names.get(p.name);
    if (first !== undefined) throw at.refuse(['policies', i, 'name'], `policy name ${p.name} is already used by policies[${first}]`);
    names.set(p.name, i);
  }
  checkUniqueMacs(at, file.policies, policies);
  return policies;
}

/** The node policy document (YAML text), as the controller and the agent store it. */
export function parsePolicyFile(text: string): NodePolicy[] {
  return parsePolicyDocument(text);
}

function toPolicy(at: Positions, p: z.infer<typeof policySchema>, i: number): NodePolicy {
  const s = p.selector;
  const base: Path = ['policies', i];
  const sel = (field: keyof PfSelector, values: string[] | undefined, parse: (v: string) => string) =>
    values?.map((v, j) => at.at([...base, 'selector', field, j], () => parse(v)));
  if (!Object.values(s).some((v) => v !== undefined)) {
    throw at.refuse([...base, 'selector'], `policy ${p.name}: the selector is empty (name pfNames, pciAddresses, vendor, device or drivers)`);
  }
  const vfs = expandVfRanges(at, [...base, 'vfs'], p.vfs ?? {}, p.numVfs);
  if (p.numVfs === 0 && vfs.size > 0) {
    throw at.refuse([...base, 'vfs'], `policy ${p.name}: numVfs 0 removes every VF, so vfs has no VF to configure; drop vfs or raise numVfs`);
  }
  return {
    name: p.name,
    selector: {
      pfNames: sel('pfNames', s.pfNames, parseIfName),
      pciAddresses: sel('pciAddresses', s.pciAddresses, parsePciAddress),
      vendor: s.vendor?.toLowerCase(),
      device: s.device?.toLowerCase(),
      drivers: sel('drivers', s.drivers, parseDriverName),
    },
    numVfs: p.numVfs,
    deviceType: p.deviceType,
    mtu: p.mtu,
    autoprobe: p.autoprobe === undefined ? undefined : parseOnOff(p.autoprobe, 'autoprobe'),
    ...(p.eswitchMode === undefined ? {} : { eswitchMode: p.eswitchMode }),
    physnet: p.physnet,
    vfs,
  };
}

function expandVfRanges(at: Positions, base: Path, ranges: Record<string, RawVfSettings>, numVfs: number): Map<number, VfSettings> {
  const out = new Map<number, VfSettings>();
  for (const [range, raw] of Object.entries(ranges)) {
    const indexes = at.at([...base, range], () => parseIndexRanges(range, 'VF range'));
    const beyond = indexes.find((vf) => vf >= numVfs);
    if (beyond !== undefined && numVfs > 0) {
      throw at.refuse([...base, range], `VF ${beyond} is beyond numVfs ${numVfs} (VFs are 0-${numVfs - 1})`);
    }
    // Field by field, so a refusal names the field and its line.
    const settings: VfSettings = {};
    for (const [field, value] of Object.entries(raw)) {
      Object.assign(settings, at.at([...base, range, field], () => parseVfSettings({ [field]: value })));
    }
    for (const index of indexes) out.set(index, { ...out.get(index), ...settings });
  }
  return out;
}

/** Two VFs with one MAC break forwarding for both: refused within a policy and across the file. */
function checkUniqueMacs(at: Positions, raw: Array<z.infer<typeof policySchema>>, policies: NodePolicy[]): void {
  const owner = new Map<string, string>();
  for (const [i, p] of policies.entries()) {
    for (const [vf, settings] of p.vfs) {
      if (settings.mac === undefined || settings.mac === ZERO_MAC) continue;
      const here = `policy ${p.name} VF ${vf}`;
      const first = owner.get(settings.mac);
      if (first !== undefined) {
        // The last range naming this VF's MAC set it (ranges were validated when expanded).
        const ranges = Object.entries(raw[i]!.vfs ?? {}).filter(([r, v]) => v.mac !== undefined && parseIndexRanges(r).includes(vf));
        const range = ranges.at(-1)?.[0];
        throw at.refuse(['policies', i, 'vfs', ...(range === undefined ? [] : [range, 'mac'])], `MAC ${settings.mac} is given to ${first} and ${here}; each VF needs its own MAC (a range gives all its VFs the same one)`);
      }
      owner.set(settings.mac, here);
    }
  }
}
