/**
 * JSON schemas of the API's objects. They validate request bodies (strictly:
 * unknown fields are refused) and document responses; @fastify/swagger turns
 * each `$id` here into an OpenAPI component of that name.
 */
import type { FastifyInstance } from 'fastify';
import { RECONCILE_BUCKETS_S, RUN_PATTERN } from '../domain/agent-counters.js';
import { CLAIM_KINDS } from '../host/errors.js';
import { INVENTORY_HASH_PATTERN } from '../host/inventory-hash.js';

/*
 * Every pattern has a `description` that says the form in words: error
 * messages quote it (errors.ts), never the regular expression. A field that
 * overrides the description keeps its form's words through `formOf`.
 */

/** Tenants, networks, physnets and hosts: what `parseName` in the controller accepts. */
export const NAME = { type: 'string', pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$', description: "1-63 lower-case letters, digits and '-', starting and ending with a letter or digit" } as const;
/** Hosts: lower-case DNS names, what `parseHostName` accepts. */
export const HOST_NAME = { type: 'string', maxLength: 253, pattern: '^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$', description: "a lower-case DNS name: letters, digits, '-' and '.'" } as const;
/** A PF as a path names it: what the controller's PF lookup accepts (a short PCI address is domain 0000). */
export const PF_REF = {
  type: 'string',
  pattern: '^([A-Za-z0-9_][A-Za-z0-9_.-]{0,14}|([0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7])$',
  description: 'a PF netdev name like ens1f0, or its PCI address like 0000:3b:00.0',
} as const;
export const PCI_ADDRESS = { type: 'string', pattern: '^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]$', description: 'a PCI address like 0000:3b:00.1 (lower-case hex)' } as const;
/** A PF's device address in an inventory: a PCI address, or netdevsim's device name (the kernel's test driver is not PCI). */
export const DEVICE_ADDRESS = {
  type: 'string',
  pattern: '^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]|netdevsim[0-9]{1,5})$',
  description: 'a PCI address like 0000:3b:00.0, or a netdevsim device like netdevsim10',
} as const;
/** A VF's address in an inventory: a PCI address, or `netdevsim<N>:vf<M>`. */
export const VF_ADDRESS = {
  type: 'string',
  pattern: '^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]|netdevsim[0-9]{1,5}:vf[0-9]{1,4})$',
  description: 'a PCI address like 0000:3b:10.1, or a netdevsim VF like netdevsim10:vf1',
} as const;
export const MAC = { type: 'string', pattern: '^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$', description: 'a MAC address like 02:5f:00:00:00:01' } as const;
export const VLAN = { type: 'integer', minimum: 0, maximum: 4094, description: 'a VLAN id, 1-4094 (0 is untagged)' } as const;
export const QOS = { type: 'integer', minimum: 0, maximum: 7, description: 'an 802.1p priority, 0-7' } as const;
export const RATE_MBPS = { type: 'integer', minimum: 0, maximum: 400_000, description: 'Mbps; 0 is none' } as const;
export const TIMESTAMP = { type: 'string', format: 'date-time', description: 'an RFC 3339 time' } as const;
/** Query strings arrive as text; numbers in them are digits, converted by the handler. */
export const DIGITS = { type: 'string', pattern: '^[0-9]{1,15}$', description: 'a whole number in decimal digits' } as const;

export const HOST_STATE = { type: 'string', enum: ['ready', 'unreachable'] } as const;
const nullable = (type: string) => ({ type: [type, 'null'] });
export const IFNAME = { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$', description: "an interface name: 1-15 letters, digits, '_', '.' and '-'" } as const;
const IPV4 = { type: 'string', pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}$', description: 'an IPv4 address like 198.18.0.1' } as const;
const IPV4_CIDR = { type: 'string', pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$', description: 'an IPv4 address with prefix length, like 198.18.0.10/24' } as const;
const NETNS_PATH = { type: 'string', minLength: 2, maxLength: 4096, pattern: '^/', description: 'an absolute network namespace path, like /var/run/netns/pod-a' } as const;
export const WORKLOAD_NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$', description: "1-253 letters, digits, '_', '.' and '-', starting with a letter or digit" } as const;
const HEX4 = { type: 'string', pattern: '^[0-9a-fA-F]{4}$', description: 'a 4-digit hex id like 8086' } as const;
const ROUTE = { type: 'object', additionalProperties: false, required: ['dst'], properties: { dst: { type: 'string', maxLength: 64, description: 'CIDR or default' }, gw: IPV4 } };

const FORMS = new Map<string, string>(
  [NAME, HOST_NAME, PF_REF, PCI_ADDRESS, DEVICE_ADDRESS, VF_ADDRESS, MAC, DIGITS, IFNAME, IPV4, IPV4_CIDR, NETNS_PATH, WORKLOAD_NAME, HEX4].map((s) => [s.pattern, s.description]),
);

/** The words for a pattern of this file, for error messages; undefined for one defined elsewhere. */
export function formOf(pattern: string): string | undefined {
  return FORMS.get(pattern);
}

/** A network's IPv4 pool (request and response). */
export const IP_POOL = {
  type: 'object',
  additionalProperties: false,
  required: ['cidr'],
  properties: { cidr: IPV4_CIDR, rangeStart: IPV4, rangeEnd: IPV4, gateway: IPV4, routes: { type: 'array', maxItems: 64, items: ROUTE } },
} as const;

/** What an allocation's VF is attached to. */
export const ATTACH_INPUT = {
  type: 'object',
  required: ['kind'],
  discriminator: { propertyName: 'kind' },
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'netns', 'ifname'],
      properties: {
        kind: { const: 'container' },
        netns: NETNS_PATH,
        ifname: IFNAME,
        ips: { type: 'array', maxItems: 16, items: IPV4_CIDR, description: 'default: the next address of the network’s pool' },
        // CNI's network-name rule, at most 253 long: the workload name's form.
        cniNetwork: { ...WORKLOAD_NAME, description: 'the CNI configuration’s `name`; with host, workload and ifname it identifies the attachment' },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['kind', 'vm'],
      properties: { kind: { const: 'vm' }, vm: { type: 'string', minLength: 1, maxLength: 200, description: 'libvirt domain name' }, failover: { type: 'boolean' } },
    },
  ],
} as const;
const COUNT = { type: 'integer', minimum: 0 } as const;

const ERROR_CODES = [
  'INVALID_ARGUMENT', 'NOT_FOUND', 'NOT_SRIOV_PF', 'UNSUPPORTED', 'OUT_OF_RANGE', 'BUSY', 'PERMISSION_DENIED', 'TRY_AGAIN', 'UNAVAILABLE',
  'TIMEOUT', 'VERIFY_FAILED', 'HOST_ERROR', 'NO_CAPACITY', 'FORBIDDEN', 'CONFLICT', 'UNAUTHENTICATED', 'INTERNAL',
];

const ApiError = {
  $id: 'ApiError',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: ERROR_CODES },
        message: { type: 'string' },
        object: { type: 'string', description: 'what the error is about' },
        claim: {
          type: 'string',
          enum: [...CLAIM_KINDS],
          description: 'with CONFLICT: what another writer holds (a VF, a MAC, the PF’s guarantee bandwidth, ...)',
        },
        nothingChanged: { type: 'boolean' },
        applied: { type: 'array', items: { type: 'string' } },
        notApplied: { type: 'array', items: { type: 'string' } },
        data: { type: 'object', additionalProperties: true, description: 'structured facts behind a refusal' },
      },
    },
  },
};

/** A tenant bandwidth group's limit: whole Mbps per PF, null for none. */
export const GROUP_RATE_MBPS = { type: ['integer', 'null'], minimum: 0, maximum: 400_000, description: 'Mbps per PF; null (or 0 when setting) is none' } as const;

const Tenant = {
  $id: 'Tenant',
  type: 'object',
  properties: {
    name: NAME,
    pfMinTxRateMbps: { ...GROUP_RATE_MBPS, description: 'bandwidth group: aggregate guarantee per PF (devlink tx_share), Mbps; null: none' },
    pfMaxTxRateMbps: { ...GROUP_RATE_MBPS, description: 'bandwidth group: aggregate cap per PF (devlink tx_max), Mbps; null: none' },
    createdAt: TIMESTAMP,
  },
};

/** `GET /v1/tenants/:name`: the tenant and its bandwidth group per PF (src/controller/tenant-groups.ts). */
const TenantView = {
  $id: 'TenantView',
  type: 'object',
  properties: {
    ...Tenant.properties,
    groupPfs: {
      type: 'array',
      description: 'with a group: each PF where the tenant holds VFs or that its networks’ physnets have, and how the group stands there',
      items: {
        type: 'object',
        properties: {
          host: HOST_NAME,
          pf: { type: 'string' },
          pfPciAddress: { type: 'string' },
          physnet: { type: ['string', 'null'] },
          vfs: { type: 'integer', minimum: 0 },
          vfMinTxRateMbps: { type: 'integer', minimum: 0 },
          enforcement: { type: 'string', enum: ['nic', 'accounted', 'refused'], description: 'nic: a devlink rate node; accounted: physnet groupsAccountingOnly; refused: takes no VF of the tenant' },
          reason: { type: ['string', 'null'], description: 'why the NIC does not enforce it' },
        },
      },
    },
  },
};

/** A physnet's tenant VLAN ranges: sorted, disjoint, within 1-4094 (checked again by the controller). */
export const TENANT_VLANS = {
  type: 'array',
  maxItems: 64,
  description: 'VLAN ranges tenants’ networks get their VLAN from, e.g. [{ "from": 1000, "to": 1999 }]',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['from', 'to'],
    properties: {
      from: { type: 'integer', minimum: 1, maximum: 4094, description: 'first VLAN, 1-4094' },
      to: { type: 'integer', minimum: 1, maximum: 4094, description: 'last VLAN, 1-4094' },
    },
  },
} as const;

const Physnet = {
  $id: 'Physnet',
  type: 'object',
  properties: {
    name: NAME,
    accountingOnly: { type: 'boolean', description: 'guarantees only accounted, not enforced' },
    groupsAccountingOnly: { type: 'boolean', description: 'tenant bandwidth groups only accounted on PFs without devlink rate nodes (else refused there)' },
    tenantVlans: TENANT_VLANS,
  },
};

const Network = {
  $id: 'Network',
  type: 'object',
  properties: {
    name: NAME,
    tenant: NAME,
    physnet: NAME,
    vlan: VLAN,
    qos: QOS,
    vlanProto: { type: 'string', enum: ['802.1Q', '802.1ad'] },
    mtu: { type: ['integer', 'null'], minimum: 68, maximum: 65535 },
    spoofChk: { type: 'boolean' },
    trust: { type: 'boolean' },
    maxTxRateMbps: RATE_MBPS,
    minTxRateMbps: RATE_MBPS,
    deviceType: { type: 'string', enum: ['netdevice', 'vfio-pci'] },
    ipam: { ...IP_POOL, type: ['object', 'null'] },
    createdAt: TIMESTAMP,
  },
};

/** A devlink rate node's name as the kernel may have it (any node, not only vfleet's): printable, no space or '/'. */
const RATE_NODE_NAME = { type: 'string', pattern: '^[!-.0-~]{1,128}$', description: 'a devlink rate node name' } as const;
/** A devlink port handle: `pci/<BDF>/<index>` or `netdevsim/netdevsim<N>/<index>`. */
const DEVLINK_PORT = {
  type: 'string',
  pattern: '^(pci/[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]|netdevsim/netdevsim[0-9]{1,5})/[0-9]{1,10}$',
  description: 'a devlink port like pci/0000:3b:00.0/2',
} as const;
/** A VF's representor (switchdev): what OVS takes (`ovs-vsctl add-port br-int <netdev>`). */
export const REPRESENTOR = {
  type: ['object', 'null'],
  additionalProperties: false,
  required: ['netdev', 'devlinkPort'],
  properties: { netdev: { ...IFNAME, type: ['string', 'null'] }, devlinkPort: DEVLINK_PORT },
  description: "switchdev mode: the VF's representor netdev and devlink port; null without one",
} as const;
const RATE_NODE = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'txShareMbps', 'txMaxMbps', 'parent'],
  properties: { name: RATE_NODE_NAME, txShareMbps: COUNT, txMaxMbps: COUNT, parent: { ...RATE_NODE_NAME, type: ['string', 'null'] } },
} as const;

const MIGRATION_STEPS = ['reserve', 'prepare', 'switch', 'release', 'done'];
export const ALLOCATION_STATES = ['pending', 'configured', 'attached', 'releasing', 'released', 'failed'];

const Allocation = {
  $id: 'Allocation',
  type: 'object',
  properties: {
    id: { type: 'string' },
    workload: { type: 'object', properties: { kind: { type: 'string', enum: ['container', 'vm'] }, name: { type: 'string' } } },
    network: NAME,
    tenant: NAME,
    host: HOST_NAME,
    pf: { type: 'string', description: 'PF netdev name' },
    pfPciAddress: DEVICE_ADDRESS,
    vfIndex: COUNT,
    pciAddress: VF_ADDRESS,
    mac: MAC,
    vlan: VLAN,
    minTxRateMbps: RATE_MBPS,
    group: nullable('string'),
    representor: { ...REPRESENTOR, description: "switchdev mode: the VF's representor from the host's last inventory; null in legacy mode" },
    state: { type: 'string', enum: ALLOCATION_STATES },
    reason: nullable('string'),
    attachment: {
      type: ['object', 'null'],
      description: 'container: { kind, netns, ifname, hostIfName, ips, cniNetwork? }; vm: { kind, vm, failover, devices? }',
      additionalProperties: true,
    },
    migration: {
      type: ['object', 'null'],
      description: 'set while a migration moves it: the migration, and whether this is the VF moved off (source) or onto (destination)',
      properties: { id: { type: 'string' }, role: { type: 'string', enum: ['source', 'destination'] } },
    },
    deviceClaim: {
      type: ['object', 'null'],
      description: 'set when a kubelet device plugin’s Allocate made it (a claim on the VF the kubelet gave a pod): the extended resource; null otherwise',
      properties: { resource: { type: 'string', examples: ['vfleet.io/red'] } },
    },
    createdAt: TIMESTAMP,
    updatedAt: TIMESTAMP,
  },
};

/** A Kubernetes extended resource name (checked again by the controller, which says what is wrong). */
export const RESOURCE_NAME = {
  type: 'string',
  minLength: 3,
  maxLength: 317,
  pattern: '^[a-z0-9.-]+/[A-Za-z0-9_.-]+$',
  description: "an extended resource like vfleet.io/red: a lower-case DNS subdomain, '/', then letters, digits, '-', '_' and '.'",
} as const;

/** What a host's kubelet device plugin learns from the controller (src/controller/device-view.ts). */
const DeviceView = {
  $id: 'DeviceView',
  type: 'object',
  properties: {
    host: HOST_NAME,
    revision: { type: 'string', description: 'a hash of the content: pass back as `after` to wait for the next change' },
    physnets: { type: 'object', additionalProperties: { type: 'string' }, description: 'PF PCI address → physnet' },
    deviceTypes: { type: 'object', additionalProperties: { type: 'string', enum: ['netdevice', 'vfio-pci'] }, description: 'PF PCI address → device type' },
    accountingOnly: { type: 'array', items: NAME, description: 'physnets of this host whose guarantees are only accounted' },
    drainedPfs: { type: 'array', items: PCI_ADDRESS, description: 'PCI addresses of the drained PFs (sorted): their VFs are offered Unhealthy' },
    networks: {
      type: 'array',
      description: 'every network on a physnet of this host (all tenants)',
      items: {
        type: 'object',
        properties: {
          name: NAME, tenant: NAME, physnet: NAME, vlan: VLAN, minTxRateMbps: RATE_MBPS, maxTxRateMbps: RATE_MBPS,
          deviceType: { type: 'string', enum: ['netdevice', 'vfio-pci'] },
        },
      },
    },
    allocations: {
      type: 'array',
      description: 'allocations holding a VF of this host, and failed ones whose VF nobody holds since (unhealthy VFs)',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          network: NAME,
          state: { type: 'string', enum: ALLOCATION_STATES },
          pfPciAddress: PCI_ADDRESS,
          vfIndex: COUNT,
          pciAddress: PCI_ADDRESS,
          minTxRateMbps: RATE_MBPS,
          deviceClaim: { type: ['object', 'null'], properties: { resource: { type: 'string' } } },
          bound: { type: 'boolean', description: 'whether a CNI ADD (or other attach) has bound it' },
        },
      },
    },
    reportedVfs: { type: 'array', items: PCI_ADDRESS, description: "the VFs in the host's last report, sorted: only these can be claimed" },
    bandwidthRatio: { type: 'number', description: 'guarantees on a PF may sum to its link speed × this' },
  },
};

/**
 * What an agent says of a driver, a netdev or a NIC's name reaches people: a
 * tenant's NO_CAPACITY names the PFs' drivers, the console shows the rest.
 * So words, not free text: no newline, no escape sequence, no megabyte.
 */
const DRIVER = { type: ['string', 'null'], pattern: '^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$', description: "a kernel driver name: 1-64 letters, digits, '_' and '-'" } as const;
const NIC_TEXT = { type: 'string', maxLength: 256, pattern: '^[^\\x00-\\x1f\\x7f]*$', description: 'one line of at most 256 printable characters' } as const;
const CPU_LIST = { type: ['string', 'null'], maxLength: 4096, pattern: '^[0-9,-]*$', description: 'a CPU list like 0-15,32-47' } as const;

/** Reported by agents: strict, because the controller hands these addresses back to agents running as root. */
const VfInfo = {
  $id: 'VfInfo',
  type: 'object',
  additionalProperties: false,
  required: ['index', 'pciAddress', 'mac', 'vlan', 'qos', 'vlanProto', 'minTxRateMbps', 'maxTxRateMbps', 'spoofChk', 'trust', 'linkState', 'driver', 'driverOverride', 'netdev', 'iommuGroup'],
  properties: {
    index: { type: 'integer', minimum: 0, maximum: 4095 },
    pciAddress: VF_ADDRESS,
    mac: MAC,
    vlan: { type: 'integer', minimum: 0, maximum: 4095 },
    qos: QOS,
    vlanProto: { type: 'string', enum: ['802.1Q', '802.1ad'] },
    minTxRateMbps: COUNT,
    maxTxRateMbps: COUNT,
    spoofChk: nullable('boolean'),
    trust: nullable('boolean'),
    linkState: { type: 'string', enum: ['auto', 'enable', 'disable'] },
    driver: DRIVER,
    driverOverride: DRIVER,
    netdev: { ...IFNAME, type: ['string', 'null'] },
    iommuGroup: { type: ['integer', 'null'], minimum: 0 },
    stats: {
      type: 'object',
      additionalProperties: false,
      required: ['rxBytes', 'rxPackets', 'txBytes', 'txPackets', 'rxDropped', 'txDropped'],
      properties: { rxBytes: COUNT, rxPackets: COUNT, txBytes: COUNT, txPackets: COUNT, rxDropped: COUNT, txDropped: COUNT },
    },
    representor: REPRESENTOR,
    rateParent: { ...RATE_NODE_NAME, type: ['string', 'null'], description: "switchdev, devlink rates: the rate node this VF's leaf is parented to" },
  },
};

const PfInfo = {
  $id: 'PfInfo',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'pciAddress', 'vendorId', 'deviceId', 'driver', 'mac', 'mtu', 'linkState', 'linkSpeedMbps', 'numaNode', 'localCpus', 'totalVfs', 'numVfs', 'autoprobe', 'eswitchMode', 'vfDeviceId', 'vfs'],
  properties: {
    name: IFNAME,
    pciAddress: DEVICE_ADDRESS,
    vendorId: HEX4,
    deviceId: HEX4,
    vendorName: NIC_TEXT,
    deviceName: NIC_TEXT,
    driver: DRIVER,
    mac: { ...MAC, type: ['string', 'null'] },
    mtu: { type: ['integer', 'null'], minimum: 0 },
    linkState: { type: 'string', enum: ['up', 'down', 'unknown'] },
    linkSpeedMbps: { type: ['integer', 'null'] },
    numaNode: { type: ['integer', 'null'] },
    localCpus: CPU_LIST,
    totalVfs: COUNT,
    numVfs: COUNT,
    autoprobe: { type: 'boolean' },
    eswitchMode: { type: ['string', 'null'], enum: ['legacy', 'switchdev', null] },
    vfDeviceId: { ...HEX4, type: ['string', 'null'] },
    vfs: { type: 'array', maxItems: 4096, items: { $ref: 'VfInfo#' } },
    rateNodes: { type: 'array', maxItems: 4096, items: RATE_NODE, description: 'switchdev, devlink rates: every rate node of the PF (vfleet-<tenant> are vfleet\'s)' },
  },
};

const HostInventory = {
  $id: 'HostInventory',
  type: 'object',
  additionalProperties: false,
  required: ['hostname', 'pfs'],
  properties: { hostname: HOST_NAME, bootId: { type: 'string', pattern: '^[0-9a-f-]{1,64}$' }, pfs: { type: 'array', maxItems: 256, items: { $ref: 'PfInfo#' } } },
};

const HostRecord = {
  $id: 'HostRecord',
  type: 'object',
  properties: {
    name: HOST_NAME,
    state: HOST_STATE,
    lastHeartbeat: { type: ['string', 'null'], format: 'date-time' },
    inventory: { $ref: 'HostInventory#' },
    physnets: { type: 'object', additionalProperties: { type: 'string' }, description: 'PF PCI address → physnet' },
    deviceTypes: { type: 'object', additionalProperties: { type: 'string' }, description: 'PF PCI address → device type' },
    drainedPfs: { type: 'array', items: PCI_ADDRESS, description: 'PCI addresses of the PFs staff drained (sorted): they take no new allocation until undrained' },
    inventoryHash: {
      type: 'string',
      pattern: INVENTORY_HASH_PATTERN,
      description:
        'sha256 of the inventory JSON, as the agent sent it with this inventory: any controller takes the agent’s reports that carry it without the inventory. ' +
        'An agent whose reports carry another one is asked for its inventory (409 inventoryNeeded). Absent on a record stored before hashes were',
    },
    updatedAt: TIMESTAMP,
  },
};

/** What a drain or undrain of a PF left (src/controller/pf-drain.ts). */
const PfDrainState = {
  $id: 'PfDrainState',
  type: 'object',
  properties: {
    host: HOST_NAME,
    pf: { type: 'string', description: 'PF netdev name (its PCI address when it is no longer in the host’s report)' },
    pfPciAddress: PCI_ADDRESS,
    drained: { type: 'boolean' },
    changed: { type: 'boolean', description: 'false when the PF already was as asked: nothing was written' },
    holding: { type: 'array', items: { $ref: 'Allocation#' }, description: 'allocations still holding a VF of the PF: what a migration or drain must move' },
  },
};

const AuditEvent = {
  $id: 'AuditEvent',
  type: 'object',
  properties: {
    seq: COUNT,
    at: TIMESTAMP,
    actor: { type: 'string', description: 'role/token id of who did it' },
    action: { type: 'string', examples: ['network.create'] },
    object: { type: 'string', examples: ['network/blue'] },
    before: { description: 'the object before the change (null when created)' },
    after: { description: 'the object after the change (null when deleted)' },
  },
};

const IsolationReport = {
  $id: 'IsolationReport',
  type: 'object',
  properties: {
    generatedAt: TIMESTAMP,
    segments: {
      type: 'array',
      items: { type: 'object', properties: { physnet: { type: 'string' }, vlan: VLAN, tenants: { type: 'array', items: { type: 'string' } }, vfs: COUNT } },
    },
    reachability: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } }, description: 'tenant → tenants sharing an L2 segment with it' },
    violations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string', enum: ['shared-vlan', 'duplicate-mac', 'trust-without-spoofchk', 'unallocated-config', 'drift'] },
          message: { type: 'string' },
          vfs: { type: 'array', items: { type: 'string' } },
          tenants: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
};

const DesiredState = {
  $id: 'DesiredState',
  type: 'object',
  properties: {
    host: HOST_NAME,
    revision: { type: 'string', description: 'pass back as `after` to wait for the next change' },
    policies: { type: 'array', items: { type: 'string', description: 'node policy YAML' } },
    macPrefix: { type: 'string', description: 'unallocated VFs with MACs under this prefix are leftovers' },
    orphanGraceMs: COUNT,
    resync: { ...COUNT, description: 'changes when a whole-host reconcile is asked for (`host reconcile`)' },
    allocations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          state: { type: 'string', enum: ALLOCATION_STATES },
          pfPciAddress: PCI_ADDRESS,
          vfIndex: COUNT,
          pciAddress: PCI_ADDRESS,
          deviceType: { type: 'string', enum: ['netdevice', 'vfio-pci'] },
          attachment: { type: ['object', 'null'], additionalProperties: true },
          mtu: { type: ['integer', 'null'] },
          routes: { type: 'array', items: ROUTE },
          config: { type: 'object', description: 'the full VF configuration (VfConfig)', additionalProperties: true },
          migration: {
            type: ['object', 'null'],
            description: 'set while a migration moves it: what the agent does depends on role and step (desired-state.ts)',
            properties: { id: { type: 'string' }, role: { type: 'string', enum: ['source', 'destination'] }, step: { type: 'string', enum: MIGRATION_STEPS }, peer: { type: 'string' } },
          },
          rateGroup: { type: ['string', 'null'], description: 'the devlink rate node (one of rateGroups) the VF’s leaf is parented to' },
        },
      },
    },
    rateGroups: {
      type: 'array',
      description: 'tenants’ bandwidth groups on this host’s PFs: devlink rate nodes vfleet-<tenant> (DesiredRateGroup)',
      items: {
        type: 'object',
        properties: { pfPciAddress: { type: 'string' }, node: { type: 'string' }, txShareMbps: COUNT, txMaxMbps: COUNT },
      },
    },
    tasks: {
      type: 'array',
      description: 'hypervisor work for this host’s agent (HypervisorTask): run each id once, report its result',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          migration: { type: 'string' },
          hypervisor: { type: 'string', enum: ['libvirt', 'qemu'] },
          op: { type: 'string', enum: ['migrate', 'plug', 'unplug'] },
          request: { type: 'object', additionalProperties: true },
        },
      },
    },
  },
};

const ENDPOINT = {
  type: ['object', 'null'],
  properties: { host: HOST_NAME, pf: { type: 'string' }, pfPciAddress: PCI_ADDRESS, vfIndex: COUNT, pciAddress: PCI_ADDRESS, allocation: { type: 'string' } },
} as const;

/** A live migration (src/controller/migrations.ts). */
const Migration = {
  $id: 'Migration',
  type: 'object',
  properties: {
    id: { type: 'string' },
    workload: { type: 'object', properties: { kind: { type: 'string', enum: ['container', 'vm'] }, name: { type: 'string' } } },
    tenant: NAME,
    network: NAME,
    mac: MAC,
    from: ENDPOINT,
    to: { ...ENDPOINT, description: 'the destination VF; null until reserved' },
    requested: { type: 'object', properties: { host: HOST_NAME, pf: { type: ['string', 'null'] } } },
    hypervisor: { type: ['string', 'null'], enum: ['libvirt', 'qemu', 'hook', null] },
    migrateUri: { type: ['string', 'null'] },
    drain: { type: ['string', 'null'] },
    state: { type: 'string', enum: ['running', 'rolling-back', 'completed', 'failed', 'aborted'] },
    step: { type: 'string', enum: MIGRATION_STEPS },
    history: {
      type: 'array',
      items: {
        type: 'object',
        properties: { step: { type: 'string', enum: [...MIGRATION_STEPS, 'rollback'] }, outcome: { type: 'string', enum: ['started', 'done', 'failed'] }, at: TIMESTAMP, detail: { type: 'string' } },
      },
    },
    downtimeMs: { type: ['number', 'null'], description: 'the downtime the hypervisor reported (QEMU’s `downtime`)' },
    reason: { type: ['string', 'null'] },
    tasks: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'string' }, op: { type: 'string', enum: ['migrate', 'plug', 'unplug'] }, host: HOST_NAME, outcome: { type: 'string', enum: ['pending', 'ok', 'failed'] }, detail: { type: ['string', 'null'] } },
      },
    },
    createdAt: TIMESTAMP,
    updatedAt: TIMESTAMP,
  },
};

const VF_COUNTS = {
  type: 'object',
  properties: {
    total: { ...COUNT, description: 'VFs the host reported' },
    allocated: { ...COUNT, description: 'held by an allocation' },
    free: COUNT,
    unschedulable: { ...COUNT, description: 'free VFs not offered: drained PF, PF without physnet, or host not ready' },
  },
} as const;

/** A host as `GET /v1/hosts` lists it (src/controller/host-summaries.ts): no inventory. */
const HostSummary = {
  $id: 'HostSummary',
  type: 'object',
  properties: {
    name: HOST_NAME,
    state: HOST_STATE,
    heartbeatAgeMs: { type: ['integer', 'null'], description: 'since this controller last heard from the host (a restarted one counts from its start)' },
    vfs: VF_COUNTS,
    committedMbps: { ...COUNT, description: 'sum of the guarantees of the allocations on it' },
    capacityMbps: { ...COUNT, description: 'what guarantees may add up to: link speeds × the bandwidth ratio' },
    drainedPfs: { type: 'array', items: PCI_ADDRESS },
    pfs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          pciAddress: PCI_ADDRESS,
          physnet: { type: ['string', 'null'] },
          deviceType: { type: 'string', enum: ['netdevice', 'vfio-pci'] },
          numaNode: { type: ['integer', 'null'] },
          linkSpeedMbps: { type: ['integer', 'null'] },
          drained: { type: 'boolean' },
          vfs: VF_COUNTS,
          committedMbps: COUNT,
          capacityMbps: { type: ['integer', 'null'] },
        },
      },
    },
  },
};

const Token = { $id: 'Token', type: 'object', properties: { id: { type: 'string' }, role: { type: 'string' }, createdAt: TIMESTAMP } };

export function addSchemas(app: FastifyInstance): void {
  for (const s of [ApiError, Tenant, TenantView, Physnet, Network, Allocation, Migration, VfInfo, PfInfo, HostInventory, HostRecord, HostSummary, PfDrainState, AuditEvent, IsolationReport, DesiredState, DeviceView, Token]) {
    app.addSchema(s);
  }
  app.addSchema(TrafficReport);
}

/** A response body documented by a shared schema. */
export const ref = (id: string, description: string) => ({ description, $ref: `${id}#` });
export const listOf = (id: string, description: string) => ({ description, type: 'array', items: { $ref: `${id}#` } });
export const noContent = (description: string) => ({ description, type: 'null' });

/** The error responses every authenticated route can give, besides its own. */
export const errorResponses = {
  400: ref('ApiError', 'INVALID_ARGUMENT and other refusals of the request itself'),
  401: ref('ApiError', 'missing or unknown token'),
  403: ref('ApiError', 'the caller may not do this'),
  404: ref('ApiError', 'no such object (or not visible to the caller)'),
  409: ref('ApiError', 'CONFLICT, NO_CAPACITY or BUSY'),
};

/** Request schemas: objects that refuse unknown fields. */
export function strictObject(properties: Record<string, unknown>, required: string[] = []) {
  return { type: 'object', additionalProperties: false, properties, required };
}

/** An agent's counters in its report (domain/agent-counters.ts): cumulative since the agent started, for /metrics. */
export const AGENT_COUNTERS = strictObject(
  {
    run: { type: 'string', pattern: RUN_PATTERN, description: 'random per agent process: the counters start from zero under a new one (1-64 printable characters)' },
    reconcileBuckets: {
      type: 'array',
      minItems: RECONCILE_BUCKETS_S.length,
      maxItems: RECONCILE_BUCKETS_S.length,
      items: COUNT,
      description: `whole-host passes that took at most ${RECONCILE_BUCKETS_S.join(', ')} s, cumulative`,
    },
    reconcileCount: COUNT,
    reconcileSeconds: { type: 'number', minimum: 0 },
    driftRepaired: COUNT,
    orphansScrubbed: COUNT,
    repairs: COUNT,
    reconcileErrors: COUNT,
  },
  ['run', 'reconcileBuckets', 'reconcileCount', 'reconcileSeconds', 'driftRepaired', 'orphansScrubbed', 'repairs', 'reconcileErrors'],
);
// ---- traffic (GET /v1/traffic, and the deltas agents send with their reports) ----

const COUNTER = { type: 'number', minimum: 0, maximum: 1e15 } as const;
const VF_INDEX = { type: 'integer', minimum: 0, maximum: 4095 } as const;
const VF_INDEXES = { type: 'array', maxItems: 4096, items: VF_INDEX } as const;

/** `traffic` of an agent's report (domain/traffic-deltas.ts): counter deltas per sample, only what moved. */
export const TRAFFIC_DELTAS = {
  ...strictObject(
    {
      intervalS: { type: 'number', minimum: 0.1, maximum: 3600, description: 'the agent’s sampling interval, seconds' },
      simulated: { type: 'boolean', description: 'counters generated by a simulated host' },
      samples: {
        type: 'array',
        maxItems: 120,
        items: strictObject(
          {
            t: { type: 'number', minimum: 0, maximum: 1e14, description: 'end of the sample, ms since the epoch (agent’s clock)' },
            dt: { type: 'number', exclusiveMinimum: 0, maximum: 3_600_000, description: 'length of the sample, ms' },
            pfs: {
              type: 'array',
              maxItems: 64,
              items: strictObject(
                {
                  pf: IFNAME,
                  d: { type: 'array', minItems: 6, maxItems: 6, items: COUNTER, description: 'the PF’s deltas: rxBytes, txBytes, rxPackets, txPackets, rxDropped, txDropped' },
                  vfs: {
                    type: 'array',
                    maxItems: 4096,
                    description: 'VFs that moved: [vf index, then the 6 deltas as in d]',
                    items: { type: 'array', minItems: 7, maxItems: 7, items: [VF_INDEX, COUNTER, COUNTER, COUNTER, COUNTER, COUNTER, COUNTER], additionalItems: false },
                  },
                },
                ['pf'],
              ),
            },
          },
          ['t', 'dt'],
        ),
      },
      notes: {
        type: 'array',
        maxItems: 64,
        description: 'per PF: counters that could not be read, restarted from zero, or were read from the VF netdev',
        items: strictObject(
          {
            pf: IFNAME,
            pfMissing: { type: 'boolean' },
            missing: { type: 'array', maxItems: 64, items: strictObject({ why: { type: 'string', maxLength: 300 }, vfs: VF_INDEXES }, ['why', 'vfs']) },
            reset: VF_INDEXES,
            netdev: VF_INDEXES,
          },
          ['pf'],
        ),
      },
    },
    ['intervalS', 'samples'],
  ),
  description: 'traffic counter deltas since the last report (kept in the controller’s memory for 15 min, never stored)',
};

const NUMBERS = { type: 'array', items: { type: 'number' } } as const;

const TrafficReport = {
  $id: 'TrafficReport',
  type: 'object',
  description: 'Rates per bucket over the last windowS seconds; columns: t[i] (ms since the epoch) is the end of bucket i. Bps: bytes per second; Pps: packets per second.',
  properties: {
    windowS: { type: 'integer' },
    intervalS: { type: 'number', description: 'the agents’ sampling interval, seconds' },
    bucketS: { type: 'number', description: 'samples are summed into buckets of this many seconds' },
    series: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          scope: { type: 'string', enum: ['vf', 'pf', 'tenant'] },
          host: { type: 'string' },
          pf: { type: 'string' },
          vf: { type: 'integer' },
          tenant: { type: 'string' },
          network: { type: 'string' },
          simulated: { type: 'boolean', description: 'generated by a simulated host, not read from a NIC' },
          source: { type: 'string', enum: ['vf-stats', 'netdev', 'simulated'], description: 'a VF’s counters: the PF’s IFLA_VF_STATS, the VF netdev’s own, or generated' },
          t: NUMBERS,
          rxBps: NUMBERS,
          txBps: NUMBERS,
          rxPps: NUMBERS,
          txPps: NUMBERS,
          rxDropsPs: NUMBERS,
          txDropsPs: NUMBERS,
        },
      },
    },
    missing: {
      type: 'array',
      description: 'matched, but their counters could not be read (never shown as zeros)',
      items: { type: 'object', properties: { host: { type: 'string' }, pf: { type: 'string' }, vf: { type: 'integer' }, reason: { type: 'string' } } },
    },
    truncated: { type: 'integer', description: 'series left out past the answer’s limit; narrow the query' },
  },
};
