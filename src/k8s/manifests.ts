/**
 * The Kubernetes objects that deploy vfleet's node side, made from the
 * controller's networks: `sriovd agent` (and its device plugin) as a
 * DaemonSet, its ServiceAccount and RBAC, the pool file as a ConfigMap, and
 * one NetworkAttachmentDefinition per network for Multus. Pure: the CLI
 * fetches the networks and prints what this returns.
 *
 * The object shapes are kubernetes-models' types (type-only imports, erased
 * at build), so a misspelt field fails the compile; the unit test validates
 * the printed objects against the API's schemas and the NAD CRD.
 *
 * Tokens are per host (`agent:<host>`, `node:<host>`), so they are not a
 * Secret that every node's pod could read: each node keeps its own two in
 * /etc/vfleet, as a host without Kubernetes does, and only nodes labelled
 * `vfleet.io/sriov=true` (after their tokens are in place) run the agent.
 *
 * The NADs say nothing about where the controller is or which token to use:
 * anyone allowed to create a NAD writes its config, and vfleet-cni runs as
 * root. The DaemonSet's init container writes the node's
 * /etc/vfleet/cni.json (server, tokenFile) instead, which the plugin obeys
 * and a NAD cannot override (src/cni/config.ts).
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { IClusterRole, IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import type { IDaemonSet } from 'kubernetes-models/apps/v1';
import type { IConfigMap, IContainer, INamespace, IServiceAccount, IVolume } from 'kubernetes-models/v1';
import type { Network } from '../domain/types.js';
import { invalid } from '../host/errors.js';
import { MAX_POOL_NAME } from './pools.js';

export const DEFAULT_NAMESPACE = 'vfleet-system';
export const RESOURCE_PREFIX = 'vfleet.io';
export const BANDWIDTH_UNIT_MBPS = 100;
/** `vfleet.io/<pool>-bw`: the bandwidth resource of a pool whose network has guarantees. */
const BANDWIDTH_SUFFIX = '-bw';
/** The label an SR-IOV node gets once its tokens are in /etc/vfleet. */
export const NODE_LABEL = 'vfleet.io/sriov';
/** The Multus annotation naming the extended resource a NAD's pods request. */
export const RESOURCE_NAME_ANNOTATION = 'k8s.v1.cni.cncf.io/resourceName';

/** Where things are on the node and in the agent's container. */
export const PATHS = {
  /** On the node: the agent's token (mounted alone, at `agentTokenMount`) and the CNI plugin's. */
  agentToken: '/etc/vfleet/agent.token',
  agentTokenMount: '/etc/vfleet/token',
  cniToken: '/etc/vfleet/cni.token',
  /** On the node: vfleet-cni's own configuration (server, tokenFile), written by the init container. */
  etcDir: '/etc/vfleet',
  cniNodeConfig: '/etc/vfleet/cni.json',
  pools: '/etc/vfleet/pools/pools.yaml',
  kubeletDir: '/var/lib/kubelet/device-plugins',
  cniBin: '/opt/cni/bin',
  /** The plugin inside the image, copied to the node's /opt/cni/bin by the init container. */
  imageCni: '/usr/local/bin/vfleet-cni',
} as const;

const NAME = 'vfleet-agent';
const POOLS_CONFIGMAP = 'vfleet-pools';

export interface ManifestOptions {
  /** A DNS-1123 label (parseNamespace). */
  namespace: string;
  /** The agent's image (parseImage). */
  image: string;
  /** The controller's URL as the nodes reach it: the agent's --server and the CNI plugin's `server` (in the node's /etc/vfleet/cni.json). */
  server: string;
  /** vfleet's version, for the version label. */
  version: string;
}

/** A Kubernetes object as printed: apiVersion, kind, metadata and the rest. */
export type K8sObject = { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string } } & Record<string, unknown>;

export interface NetworkAttachmentDefinition extends K8sObject {
  apiVersion: 'k8s.cni.cncf.io/v1';
  kind: 'NetworkAttachmentDefinition';
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations: Record<string, string> };
  spec: { config: string };
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A namespace is a DNS-1123 label: lower-case letters, digits and '-', 1-63, alphanumeric at both ends. */
export function parseNamespace(value: string): string {
  if (value.length > 63 || !DNS_LABEL.test(value)) {
    throw invalid(`--namespace must be a DNS-1123 label (1-63 of a-z 0-9 -, starting and ending with a letter or digit), got "${value}"`);
  }
  return value;
}

// registry/path:tag or @sha256:digest; lower-case path components as the distribution spec wants.
const IMAGE = /^[A-Za-z0-9.-]+(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(\/[a-z0-9]+([._-][a-z0-9]+)*)(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;

export function parseImage(value: string): string {
  if (value.length > 255 || !IMAGE.test(value)) throw invalid(`--image must be an image reference like ghcr.io/vfleet/vfleet:0.1.0, got "${value}"`);
  return value;
}

export const defaultImage = (version: string): string => `ghcr.io/vfleet/vfleet:${version}`;

/** The objects, in the order `kubectl apply` needs them (namespace first). */
export function buildManifests(networks: Network[], o: ManifestOptions): K8sObject[] {
  const sorted = [...networks].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  checkResourceNames(sorted);
  const pools = poolFile(sorted);
  return [
    ...(ownNamespace(o.namespace) ? [namespace(o)] : []),
    serviceAccount(o),
    clusterRole(o),
    clusterRoleBinding(o),
    poolsConfigMap(o, pools),
    daemonSet(o, pools),
    ...sorted.map((n) => networkAttachment(n, o)),
  ] as K8sObject[];
}

/** Multi-document YAML, `header` as comment lines at the top. */
export function renderYaml(objects: K8sObject[], header: string[]): string {
  const comments = header.map((l) => `# ${l}`.trimEnd()).join('\n');
  return `${comments}\n${objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join('')}`;
}

/** The pool file the device plugin reads: one pool per network, named after it. */
export function poolFile(networks: Network[]): string {
  const doc = {
    resourcePrefix: RESOURCE_PREFIX,
    bandwidthUnitMbps: BANDWIDTH_UNIT_MBPS,
    pools: networks.map((n) => ({ name: n.name, network: n.name })),
  };
  return stringify(doc);
}

/**
 * The vfleet-cni configuration of a network's NAD (src/cni/config.ts reads
 * it). No `server` or `tokenFile`: those come from the node's
 * /etc/vfleet/cni.json (cniNodeConfig), which a NAD cannot change.
 */
export function cniConfig(network: Network): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: network.name,
    type: 'vfleet-cni',
    network: network.name,
    // Multus passes these from the pod's network annotation; addresses only make sense with the network's pool.
    capabilities: network.ipam ? { mac: true, ips: true } : { mac: true },
  };
}

/**
 * Network `red` has resources vfleet.io/red and, with guarantees,
 * vfleet.io/red-bw: a network named `red-bw` would then be a second resource
 * of the same name. Refused, so that nothing is half-deployed.
 */
function checkResourceNames(networks: Network[]): void {
  const names = new Set(networks.map((n) => n.name));
  for (const n of networks) {
    // A resource name's part after the prefix is a qualified name: 63 characters at most.
    if (n.minTxRateMbps > 0 && `${n.name}${BANDWIDTH_SUFFIX}`.length > 63) {
      throw invalid(
        `network ${n.name}'s bandwidth resource ${RESOURCE_PREFIX}/${n.name}${BANDWIDTH_SUFFIX} is longer than the 63 characters Kubernetes takes after the prefix; use a network name of at most ${63 - BANDWIDTH_SUFFIX.length}`,
        `network/${n.name}`,
      );
    }
    // The pool file names each pool after its network, and the agent refuses a longer pool name at start (all its pools with it).
    if (n.name.length > MAX_POOL_NAME) {
      throw invalid(
        `network ${n.name} has a name of ${n.name.length} characters: the agent's pool file takes pool names (the resource ${RESOURCE_PREFIX}/<name>) of at most ${MAX_POOL_NAME}, so that <name>${BANDWIDTH_SUFFIX} fits Kubernetes' 63 too; use a network name of at most ${MAX_POOL_NAME}`,
        `network/${n.name}`,
      );
    }
    if (n.minTxRateMbps > 0 && names.has(`${n.name}${BANDWIDTH_SUFFIX}`)) {
      throw invalid(
        `network ${n.name}-bw's resource ${RESOURCE_PREFIX}/${n.name}-bw is also network ${n.name}'s bandwidth resource (it has min tx rate ${n.minTxRateMbps} Mbps); rename one of them`,
        `network/${n.name}-bw`,
      );
    }
  }
}

// Applying a Namespace object for these would relabel a namespace the cluster owns.
const ownNamespace = (ns: string) => ns !== 'default' && !ns.startsWith('kube-');

function labels(o: ManifestOptions, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'vfleet',
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/version': o.version,
    'app.kubernetes.io/managed-by': 'sriovctl',
  };
}

/** Immutable once the DaemonSet exists, so without the version. */
const selectorLabels = { 'app.kubernetes.io/name': 'vfleet', 'app.kubernetes.io/component': 'agent' };

function namespace(o: ManifestOptions): INamespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: o.namespace,
      // The agent is privileged with host paths; Pod Security Admission would refuse it under baseline or restricted.
      labels: { ...labels(o, 'agent'), 'pod-security.kubernetes.io/enforce': 'privileged' },
    },
  };
}

function serviceAccount(o: ManifestOptions): IServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: NAME, namespace: o.namespace, labels: labels(o, 'agent') },
    // The agent never calls the Kubernetes API: no token in its pods.
    automountServiceAccountToken: false,
  };
}

/**
 * Least privilege: sriovd agent reads nothing from the API server (its state
 * comes from the vfleet controller, the kubelet reaches it over the
 * device-plugin socket), so the role grants nothing. It exists so that the
 * grant is explicit and a reviewer sees it is empty.
 */
function clusterRole(o: ManifestOptions): IClusterRole {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: NAME, labels: labels(o, 'agent') },
    rules: [],
  };
}

function clusterRoleBinding(o: ManifestOptions): IClusterRoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    // Cluster-scoped: the namespace in the name keeps two installations apart.
    metadata: { name: `${NAME}-${o.namespace}`, labels: labels(o, 'agent') },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME },
    subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: o.namespace }],
  };
}

function poolsConfigMap(o: ManifestOptions, pools: string): IConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: POOLS_CONFIGMAP, namespace: o.namespace, labels: labels(o, 'agent') },
    data: { 'pools.yaml': pools },
  };
}

function hostPath(name: string, path: string, type: 'Directory' | 'DirectoryOrCreate' | 'File'): IVolume {
  return { name, hostPath: { path, type } };
}

const VOLUMES: IVolume[] = [
  hostPath('device-plugins', PATHS.kubeletDir, 'Directory'),
  hostPath('sys', '/sys', 'Directory'),
  hostPath('netns', '/var/run/netns', 'DirectoryOrCreate'),
  hostPath('cni-bin', PATHS.cniBin, 'DirectoryOrCreate'),
  // The init container's only: it writes vfleet-cni's node configuration there. The node's tokens are there already (see NODE_LABEL).
  hostPath('vfleet-etc', PATHS.etcDir, 'Directory'),
  hostPath('dev-vfio', '/dev/vfio', 'DirectoryOrCreate'),
  // Only the agent's own token: the node token is the CNI plugin's, read on the host. A missing file stops the pod with that reason.
  hostPath('agent-token', PATHS.agentToken, 'File'),
  { name: 'pools', configMap: { name: POOLS_CONFIGMAP } },
];

function agentContainer(o: ManifestOptions): IContainer {
  return {
    name: 'agent',
    image: o.image,
    command: ['sriovd'],
    // $(NODE_NAME) is expanded by the kubelet from the env below: the agent registers under its node's name.
    args: [
      'agent',
      '--server', o.server,
      '--token-file', PATHS.agentTokenMount,
      '--host', 'linux',
      '--hostname', '$(NODE_NAME)',
      '--device-plugin', PATHS.pools,
      '--kubelet-dir', PATHS.kubeletDir,
    ],
    env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
    // Writes sysfs (sriov_numvfs, driver binding), VF settings over netlink, and enters pods' network namespaces.
    securityContext: { privileged: true },
    resources: { requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '384Mi' } },
    volumeMounts: [
      { name: 'device-plugins', mountPath: PATHS.kubeletDir },
      { name: 'sys', mountPath: '/sys' },
      // Namespaces the runtime creates after the agent started must appear inside it.
      { name: 'netns', mountPath: '/var/run/netns', mountPropagation: 'HostToContainer' },
      { name: 'dev-vfio', mountPath: '/dev/vfio' },
      { name: 'agent-token', mountPath: PATHS.agentTokenMount, readOnly: true },
      { name: 'pools', mountPath: '/etc/vfleet/pools', readOnly: true },
    ],
  };
}

/** vfleet-cni's node configuration (src/cni/config.ts loadNodeConfig): the controller, and the node token's file. */
export function cniNodeConfig(server: string): { server: string; tokenFile: string } {
  return { server, tokenFile: PATHS.cniToken };
}

const HOST_CNI_BIN = `/host${PATHS.cniBin}`;
const HOST_ETC = `/host${PATHS.etcDir}`;
const HOST_NODE_CONFIG = `/host${PATHS.cniNodeConfig}`;

/**
 * Copies the CNI plugin to the node, next to the runtime's others, and writes
 * its node configuration; each written then renamed, so no ADD runs half a
 * file or reads half a configuration. The JSON comes in through the
 * environment, so no shell quoting is involved.
 */
function installCniContainer(o: ManifestOptions): IContainer {
  return {
    name: 'install-cni',
    image: o.image,
    command: [
      'sh',
      '-c',
      `umask 022 && cp ${PATHS.imageCni} ${HOST_CNI_BIN}/.vfleet-cni.new && mv -f ${HOST_CNI_BIN}/.vfleet-cni.new ${HOST_CNI_BIN}/vfleet-cni` +
        ` && printf '%s\\n' "$VFLEET_CNI_NODE_CONFIG_JSON" > ${HOST_ETC}/.cni.json.new && mv -f ${HOST_ETC}/.cni.json.new ${HOST_NODE_CONFIG}`,
    ],
    env: [{ name: 'VFLEET_CNI_NODE_CONFIG_JSON', value: JSON.stringify(cniNodeConfig(o.server)) }],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    volumeMounts: [
      { name: 'cni-bin', mountPath: HOST_CNI_BIN },
      { name: 'vfleet-etc', mountPath: HOST_ETC },
    ],
  };
}

function daemonSet(o: ManifestOptions, pools: string): IDaemonSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: NAME, namespace: o.namespace, labels: labels(o, 'agent') },
    spec: {
      selector: { matchLabels: selectorLabels },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: {
          labels: { ...labels(o, 'agent'), ...selectorLabels },
          // The agent reads the pool file at start: a changed file rolls the pods.
          annotations: { 'vfleet.io/pools-sha256': createHash('sha256').update(pools).digest('hex') },
        },
        spec: {
          serviceAccountName: NAME,
          automountServiceAccountToken: false,
          hostNetwork: true,
          // CNI netns paths may be /proc/<pid>/ns/net of the host's processes.
          hostPID: true,
          dnsPolicy: 'ClusterFirstWithHostNet',
          priorityClassName: 'system-node-critical',
          nodeSelector: { 'kubernetes.io/os': 'linux', [NODE_LABEL]: 'true' },
          // Node-level infrastructure: it runs on tainted SR-IOV nodes too, as CNI DaemonSets do.
          tolerations: [{ operator: 'Exists', effect: 'NoSchedule' }],
          terminationGracePeriodSeconds: 30,
          initContainers: [installCniContainer(o)],
          containers: [agentContainer(o)],
          volumes: VOLUMES,
        },
      },
    },
  };
}

function networkAttachment(n: Network, o: ManifestOptions): NetworkAttachmentDefinition {
  return {
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    metadata: {
      name: n.name,
      namespace: o.namespace,
      labels: labels(o, 'network'),
      annotations: { [RESOURCE_NAME_ANNOTATION]: `${RESOURCE_PREFIX}/${n.name}` },
    },
    spec: { config: JSON.stringify(cniConfig(n)) },
  };
}
