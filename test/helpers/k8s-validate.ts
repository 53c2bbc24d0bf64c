/**
 * Kubernetes objects checked as the API server would take them, without a
 * cluster: the built-in kinds against their OpenAPI schemas (kubernetes-models'
 * compiled validators), NetworkAttachmentDefinitions against the CRD's
 * `openAPIV3Schema` (vendored in test/fixtures/k8s, compiled with ajv, unknown
 * fields refused as `kubectl apply --validate=strict` does), and then the
 * API server's own rules that no schema carries (names, labels, image,
 * selector, volume references), written here after
 * k8s.io/apimachinery/pkg/util/validation and pkg/apis/core/validation.
 *
 * `problems(obj)` lists every problem found; an empty list means valid.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv, type AnySchemaObject } from 'ajv';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Pod, ServiceAccount } from 'kubernetes-models/v1';
import type { IContainer, IPodSpec } from 'kubernetes-models/v1';
import { parse } from 'yaml';

const CRD_FILE = fileURLToPath(new URL('../../../test/fixtures/k8s/networks-crd.yaml', import.meta.url));

interface BuiltIn {
  apiVersion: string;
  kind: string;
  namespaced: boolean;
  validate(obj: Record<string, unknown>): void;
}

/** kubernetes-models' constructors fill apiVersion and kind in, so the object's own are compared first. */
const model =
  (M: new (data: never) => { validate(): void }) =>
  (obj: Record<string, unknown>) =>
    new M(obj as never).validate();

const BUILT_IN: BuiltIn[] = [
  { apiVersion: 'v1', kind: 'Namespace', namespaced: false, validate: model(Namespace) },
  { apiVersion: 'v1', kind: 'ServiceAccount', namespaced: true, validate: model(ServiceAccount) },
  { apiVersion: 'v1', kind: 'ConfigMap', namespaced: true, validate: model(ConfigMap) },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', namespaced: false, validate: model(ClusterRole) },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', namespaced: false, validate: model(ClusterRoleBinding) },
  { apiVersion: 'apps/v1', kind: 'DaemonSet', namespaced: true, validate: model(DaemonSet) },
  { apiVersion: 'v1', kind: 'Pod', namespaced: true, validate: model(Pod) },
];

/** The CRD's schema for `group/version`, made strict: every object with properties refuses others. */
function crdValidator(): (obj: unknown) => string[] {
  const crd = parse(readFileSync(CRD_FILE, 'utf8')) as {
    spec: { group: string; versions: Array<{ name: string; served: boolean; schema: { openAPIV3Schema: AnySchemaObject } }> };
  };
  const version = crd.spec.versions.find((v) => v.name === 'v1' && v.served);
  if (!version) throw new Error('the vendored CRD serves no v1');
  const schema = strict(structuredClone(version.schema.openAPIV3Schema));
  // apiVersion, kind and metadata are implicit in every CRD's schema.
  schema.properties = {
    apiVersion: { type: 'string', enum: [`${crd.spec.group}/v1`] },
    kind: { type: 'string', enum: ['NetworkAttachmentDefinition'] },
    metadata: { type: 'object' },
    ...schema.properties,
  };
  schema.required = ['apiVersion', 'kind', 'metadata', ...(schema.required ?? [])];
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  return (obj) => (validate(obj) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${e.params.additionalProperty})` : ''}`));
}

function strict(schema: AnySchemaObject): AnySchemaObject {
  if (schema.properties && schema.additionalProperties === undefined && !schema['x-kubernetes-preserve-unknown-fields']) {
    schema.additionalProperties = false;
  }
  for (const sub of Object.values((schema.properties ?? {}) as Record<string, AnySchemaObject>)) strict(sub);
  if (schema.items) strict(schema.items as AnySchemaObject);
  return schema;
}

const validateNad = crdValidator();

// k8s.io/apimachinery/pkg/util/validation
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

const isDnsLabel = (s: unknown): boolean => typeof s === 'string' && s.length <= 63 && DNS_LABEL.test(s);
const isDnsSubdomain = (s: unknown): boolean => typeof s === 'string' && s.length <= 253 && DNS_SUBDOMAIN.test(s);

function isQualifiedName(key: string): boolean {
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts.pop()!;
  const prefix = parts[0];
  return (prefix === undefined || isDnsSubdomain(prefix)) && name.length <= 63 && QUALIFIED_NAME.test(name);
}

/** Every problem the API server would report for `obj`; none: it would take it. */
export function problems(obj: unknown): string[] {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return ['not an object'];
  const o = obj as Record<string, unknown>;
  const where = `${String(o.kind)}/${String((o.metadata as { name?: unknown } | undefined)?.name)}`;
  const found: string[] = [];
  if (o.apiVersion === 'k8s.cni.cncf.io/v1' && o.kind === 'NetworkAttachmentDefinition') {
    found.push(...validateNad(o), ...metadataProblems(o, true));
  } else {
    const kind = BUILT_IN.find((k) => k.apiVersion === o.apiVersion && k.kind === o.kind);
    if (!kind) return [`${where}: no such kind ${String(o.apiVersion)} ${String(o.kind)}`];
    try {
      kind.validate(o);
    } catch (err) {
      found.push(`schema: ${(err as Error).message}`);
    }
    found.push(...metadataProblems(o, kind.namespaced), ...kindProblems(o));
  }
  return found.map((p) => `${where}: ${p}`);
}

/** Throws with every problem of every object. */
export function assertValid(objects: unknown[]): void {
  const all = objects.flatMap(problems);
  if (all.length) throw new Error(`invalid Kubernetes objects:\n  ${all.join('\n  ')}`);
}

function metadataProblems(o: Record<string, unknown>, namespaced: boolean): string[] {
  const m = (o.metadata ?? {}) as { name?: unknown; namespace?: unknown; labels?: Record<string, unknown>; annotations?: Record<string, unknown> };
  const found: string[] = [];
  // A namespace's name is a label; most other names are subdomains (the RBAC kinds allow more: this is stricter).
  const nameOk = o.kind === 'Namespace' ? isDnsLabel(m.name) : isDnsSubdomain(m.name);
  if (!nameOk) found.push(`metadata.name ${JSON.stringify(m.name)} is not a DNS-1123 ${o.kind === 'Namespace' ? 'label' : 'subdomain'}`);
  // Absent: kubectl puts the object in its current namespace.
  if (namespaced && m.namespace !== undefined && !isDnsLabel(m.namespace)) found.push(`metadata.namespace ${JSON.stringify(m.namespace)} is not a DNS-1123 label`);
  if (!namespaced && m.namespace !== undefined) found.push('metadata.namespace is set on a cluster-scoped object');
  found.push(...labelProblems('metadata.labels', m.labels));
  for (const key of Object.keys(m.annotations ?? {})) {
    if (!isQualifiedName(key)) found.push(`metadata.annotations key "${key}" is not a qualified name`);
    if (typeof m.annotations![key] !== 'string') found.push(`metadata.annotations["${key}"] is not a string`);
  }
  return found;
}

function labelProblems(field: string, labels: Record<string, unknown> | undefined): string[] {
  const found: string[] = [];
  for (const [key, value] of Object.entries(labels ?? {})) {
    if (!isQualifiedName(key)) found.push(`${field} key "${key}" is not a qualified name`);
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) found.push(`${field}["${key}"] ${JSON.stringify(value)} is not a label value`);
  }
  return found;
}

function kindProblems(o: Record<string, unknown>): string[] {
  switch (o.kind) {
    case 'ConfigMap':
      return Object.keys((o.data ?? {}) as object)
        .filter((k) => k.length > 253 || !CONFIGMAP_KEY.test(k))
        .map((k) => `data key "${k}" is not a valid ConfigMap key`);
    case 'ClusterRoleBinding': {
      const subjects = (o.subjects ?? []) as Array<{ kind?: string; name?: unknown; namespace?: unknown }>;
      return subjects
        .filter((s) => s.kind === 'ServiceAccount' && (!isDnsSubdomain(s.name) || !isDnsLabel(s.namespace)))
        .map((s) => `subject ServiceAccount ${JSON.stringify(s.name)} needs a valid name and namespace`);
    }
    case 'DaemonSet':
      return daemonSetProblems(o as { spec?: DaemonSetSpec });
    case 'Pod':
      return podProblems((o.spec ?? {}) as IPodSpec);
    default:
      return [];
  }
}

interface DaemonSetSpec {
  selector?: { matchLabels?: Record<string, string> };
  template?: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: IPodSpec };
}

function daemonSetProblems(o: { spec?: DaemonSetSpec }): string[] {
  const found: string[] = [];
  const selector = o.spec?.selector?.matchLabels ?? {};
  const labels = o.spec?.template?.metadata?.labels ?? {};
  if (Object.keys(selector).length === 0) found.push('spec.selector selects nothing');
  for (const [k, v] of Object.entries(selector)) {
    if (labels[k] !== v) found.push(`spec.selector ${k}=${v} does not match the template's labels`);
  }
  found.push(...labelProblems('spec.selector.matchLabels', selector), ...labelProblems('spec.template.metadata.labels', labels));
  const pod = o.spec?.template?.spec;
  if (pod) found.push(...podProblems(pod));
  return found;
}

function podProblems(pod: IPodSpec): string[] {
  const found: string[] = [];
  const volumes = new Set<string>();
  for (const v of pod.volumes ?? []) {
    if (!isDnsLabel(v.name)) found.push(`volume name "${v.name}" is not a DNS-1123 label`);
    if (volumes.has(v.name)) found.push(`volume "${v.name}" is defined twice`);
    volumes.add(v.name);
    if (v.hostPath && !v.hostPath.path.startsWith('/')) found.push(`volume "${v.name}": hostPath ${v.hostPath.path} is not absolute`);
  }
  if (pod.serviceAccountName !== undefined && !isDnsSubdomain(pod.serviceAccountName)) found.push(`serviceAccountName "${pod.serviceAccountName}" is not a DNS-1123 subdomain`);
  found.push(...labelProblems('nodeSelector', pod.nodeSelector as Record<string, unknown> | undefined));
  const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
  if ((pod.containers ?? []).length === 0) found.push('the pod has no containers');
  const names = new Set<string>();
  for (const c of containers) {
    if (names.has(c.name)) found.push(`container name "${c.name}" is used twice`);
    names.add(c.name);
    found.push(...containerProblems(c, volumes, pod));
  }
  return found;
}

function containerProblems(c: IContainer, volumes: Set<string>, pod: IPodSpec): string[] {
  const found: string[] = [];
  const at = `container "${c.name}"`;
  if (!isDnsLabel(c.name)) found.push(`${at}: name is not a DNS-1123 label`);
  if (typeof c.image !== 'string' || c.image.trim() === '') found.push(`${at}: image is required`);
  const paths = new Set<string>();
  for (const m of c.volumeMounts ?? []) {
    if (!volumes.has(m.name)) found.push(`${at}: volumeMount "${m.name}" names no volume`);
    if (!m.mountPath.startsWith('/')) found.push(`${at}: mountPath ${m.mountPath} is not absolute`);
    if (paths.has(m.mountPath)) found.push(`${at}: mountPath ${m.mountPath} is mounted twice`);
    paths.add(m.mountPath);
    if (m.mountPropagation === 'Bidirectional' && !c.securityContext?.privileged) found.push(`${at}: Bidirectional mount propagation needs a privileged container`);
  }
  for (const e of c.env ?? []) {
    if (!ENV_NAME.test(e.name)) found.push(`${at}: env name "${e.name}" is not valid`);
    if (e.value !== undefined && e.valueFrom !== undefined) found.push(`${at}: env ${e.name} has both value and valueFrom`);
  }
  for (const resource of ['cpu', 'memory']) {
    const req = c.resources?.requests?.[resource];
    const lim = c.resources?.limits?.[resource];
    if (req !== undefined && lim !== undefined && quantity(String(req)) > quantity(String(lim))) found.push(`${at}: ${resource} request ${req} is above its limit ${lim}`);
  }
  found.push(...extendedResourceProblems(c, at));
  if (pod.hostNetwork && (c.ports ?? []).some((p) => p.hostPort !== undefined && p.hostPort !== p.containerPort)) {
    found.push(`${at}: with hostNetwork, hostPort must equal containerPort`);
  }
  return found;
}

/** Extended resources (a device plugin's `vendor.example/name`) are whole, and not overcommitted: request = limit. */
function extendedResourceProblems(c: IContainer, at: string): string[] {
  const found: string[] = [];
  const requests = (c.resources?.requests ?? {}) as Record<string, unknown>;
  const limits = (c.resources?.limits ?? {}) as Record<string, unknown>;
  for (const name of new Set([...Object.keys(requests), ...Object.keys(limits)])) {
    if (!name.includes('/') || name.startsWith('kubernetes.io/') || name.includes('.kubernetes.io/')) continue;
    if (!isQualifiedName(name)) found.push(`${at}: resource name ${name} is not a qualified name`);
    const limit = limits[name];
    if (limit === undefined) found.push(`${at}: extended resource ${name} needs a limit`);
    else if (!Number.isInteger(quantity(String(limit)))) found.push(`${at}: extended resource ${name} must be a whole number, got ${String(limit)}`);
    if (requests[name] !== undefined && limit !== undefined && quantity(String(requests[name])) !== quantity(String(limit))) {
      found.push(`${at}: extended resource ${name}: request must equal limit`);
    }
  }
  return found;
}

const SUFFIX: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };

/** A resource quantity (`50m`, `96Mi`, `1.5`) as a number. */
function quantity(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) throw new Error(`not a quantity: ${q}`);
  return Number(m[1]) * SUFFIX[m[2] ?? '']!;
}
