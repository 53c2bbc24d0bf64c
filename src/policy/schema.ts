/**
 * The node policy file (`sriovctl host apply -f`): YAML, validated in full
 * before anything is planned, so a bad file changes nothing.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { invalid } from '../host/errors.js';
import type { VfSettings } from '../host/model.js';
import { parseIfName, parseIndexRanges, parseOnOff, parsePciAddress, parseVfSettings } from '../host/validate.js';

const onOff = z.union([z.boolean(), z.enum(['on', 'off'])]);
const hex4 = z.string().regex(/^[0-9a-fA-F]{4}$/, 'a 4-digit hex id');
const name = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'lower-case letters, digits and -');

const vfSettingsSchema = z
  .object({
    mac: z.string(),
    vlan: z.number().int(),
    qos: z.number().int(),
    vlanProto: z.string(),
    maxTxRateMbps: z.number().int(),
    minTxRateMbps: z.number().int(),
    spoofChk: onOff,
    trust: onOff,
    linkState: z.string(),
  })
  .partial()
  .strict();

const policySchema = z
  .object({
    name,
    selector: z
      .object({
        pfNames: z.array(z.string()).optional(),
        pciAddresses: z.array(z.string()).optional(),
        vendor: hex4.optional(),
        device: hex4.optional(),
        drivers: z.array(z.string()).optional(),
      })
      .strict(),
    numVfs: z.number().int().min(0),
    deviceType: z.enum(['netdevice', 'vfio-pci']).default('netdevice'),
    mtu: z.number().int().min(68).max(65535).optional(),
    autoprobe: onOff.optional(),
    physnet: name.optional(),
    vfs: z.record(z.string(), vfSettingsSchema).optional(),
  })
  .strict();

const fileSchema = z.object({ policies: z.array(policySchema) }).strict();

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
  physnet?: string;
  /** VF index → settings, expanded from the file's ranges. */
  vfs: Map<number, VfSettings>;
}

export function parsePolicyFile(text: string): NodePolicy[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw invalid(`policy file is not valid YAML: ${(err as Error).message}`);
  }
  const result = fileSchema.safeParse(doc);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw invalid(`policy file: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  const policies = result.data.policies.map(toPolicy);
  const names = new Set<string>();
  for (const p of policies) {
    if (names.has(p.name)) throw invalid(`policy file: policy name ${p.name} is used twice`);
    names.add(p.name);
  }
  return policies;
}

function toPolicy(p: z.infer<typeof policySchema>): NodePolicy {
  const s = p.selector;
  const where = `policy ${p.name}`;
  if (!Object.values(s).some((v) => v !== undefined)) throw invalid(`${where}: the selector is empty`);
  return {
    name: p.name,
    selector: {
      pfNames: s.pfNames?.map(parseIfName),
      pciAddresses: s.pciAddresses?.map(parsePciAddress),
      vendor: s.vendor?.toLowerCase(),
      device: s.device?.toLowerCase(),
      drivers: s.drivers,
    },
    numVfs: p.numVfs,
    deviceType: p.deviceType,
    mtu: p.mtu,
    autoprobe: p.autoprobe === undefined ? undefined : parseOnOff(p.autoprobe, `${where} autoprobe`),
    physnet: p.physnet,
    vfs: expandVfRanges(p.vfs ?? {}, where),
  };
}

function expandVfRanges(ranges: Record<string, z.infer<typeof vfSettingsSchema>>, where: string): Map<number, VfSettings> {
  const out = new Map<number, VfSettings>();
  for (const [range, raw] of Object.entries(ranges)) {
    const settings = parseVfSettings(raw);
    for (const index of parseIndexRanges(range, `${where} VF range`)) {
      out.set(index, { ...out.get(index), ...settings });
    }
  }
  return out;
}
