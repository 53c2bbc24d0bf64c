// `sriovctl k8s manifests`, run as a user would against a real controller in
// this process, its output parsed and checked as Kubernetes objects: the
// built-in kinds by kubernetes-models' schemas, the NetworkAttachmentDefinitions
// by the published CRD, and each NAD's config by vfleet-cni's own parser.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IDaemonSet } from 'kubernetes-models/apps/v1';
import type { IConfigMap, IContainer } from 'kubernetes-models/v1';
import { parse, parseAllDocuments } from 'yaml';
import { loadNodeConfig, parseConfig, type NodeConfig } from '../../src/cni/config.js';
import type { Network } from '../../src/domain/types.js';
import { BANDWIDTH_UNIT_MBPS, buildManifests, cniNodeConfig } from '../../src/k8s/manifests.js';
import { parsePoolDocument } from '../../src/k8s/pools.js';
import { remoteCli } from '../helpers/cli.js';
import { startRemoteController, type RemoteController } from '../helpers/remote-controller.js';
import { assertValid, problems } from '../helpers/k8s-validate.js';

const HOST = 'node1';
const AGENT_SERVER = 'https://vfleet.example:8443';
const VERSION = (JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const NETWORK: Network = {
  name: 'x', tenant: 'blue', physnet: 'fabric', vlan: 100, qos: 0, vlanProto: '802.1Q', mtu: null, spoofChk: true, trust: false,
  maxTxRateMbps: 0, minTxRateMbps: 0, deviceType: 'netdevice', ipam: null, createdAt: '2026-01-01T00:00:00.000Z',
};

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } } & Record<string, unknown>;
type Nad = Obj & { spec: { config: string } };

let rc: RemoteController;

const { cli, ok, fails } = remoteCli(() => rc);

/** The printed YAML documents, each parsed strictly. */
function documents(yaml: string): Obj[] {
  return parseAllDocuments(yaml).map((d) => {
    assert.deepEqual(d.errors, [], 'the YAML parses');
    return d.toJS() as Obj;
  });
}

const manifests = async (...args: string[]) => documents(await ok(['k8s', 'manifests', '--agent-server', AGENT_SERVER, ...args]));
const one = <T extends Obj>(objs: Obj[], kind: string) => objs.find((o) => o.kind === kind) as T;
const container = (ds: IDaemonSet, name: string) => [...(ds.spec!.template.spec!.initContainers ?? []), ...ds.spec!.template.spec!.containers].find((c) => c.name === name)!;
/** The value after `flag` in the agent's arguments. */
const argOf = (c: IContainer, flag: string) => c.args![c.args!.indexOf(flag) + 1];

before(async () => {
  rc = await startRemoteController('vfleet-k8s-manifests-', HOST);
  await ok(['tenant', 'create', 'blue']);
  await ok(['network', 'create', 'red', '--tenant', 'blue', '--physnet', 'fabric', '--vlan', '100', '--max-tx-rate', '5000', '--min-tx-rate', '1000']);
  await ok(['network', 'create', 'blue-pods', '--tenant', 'blue', '--physnet', 'fabric', '--vlan', '200', '--ip-pool', '198.18.0.0/24', '--gateway', '198.18.0.1']);
  await ok(['network', 'create', 'dpdk', '--tenant', 'blue', '--physnet', 'fabric', '--vlan', '300', '--device-type', 'vfio-pci']);
});

after(() => rc.close());

describe('sriovctl k8s manifests', () => {
  it('prints objects the API server would take: the built-in kinds, and a NAD per network', async () => {
    const objs = await manifests();
    assertValid(objs);
    assert.deepEqual(
      objs.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'Namespace/vfleet-system',
        'ServiceAccount/vfleet-agent',
        'ClusterRole/vfleet-agent',
        'ClusterRoleBinding/vfleet-agent-vfleet-system',
        'ConfigMap/vfleet-pools',
        'DaemonSet/vfleet-agent',
        'NetworkAttachmentDefinition/blue-pods',
        'NetworkAttachmentDefinition/dpdk',
        'NetworkAttachmentDefinition/red',
      ],
    );
    for (const o of objs.filter((x) => x.kind !== 'Namespace' && !x.kind.startsWith('Cluster'))) assert.equal(o.metadata.namespace, 'vfleet-system', `${o.kind}'s namespace`);
    // Least privilege: the agent reads nothing from the API server.
    assert.deepEqual(one<Obj>(objs, 'ClusterRole').rules, []);
    assert.equal(one<Obj>(objs, 'ServiceAccount').automountServiceAccountToken, false);
  });

  it("gives each network a NAD whose config vfleet-cni's own parser takes, and names its resource", async () => {
    const nads = (await manifests()).filter((o): o is Nad => o.kind === 'NetworkAttachmentDefinition');
    const networks = await rc.control.networks.listNetworks({ id: 'test', role: 'admin' });
    assert.equal(nads.length, networks.length);
    for (const nad of nads) {
      const network = networks.find((n) => n.name === nad.metadata.name)!;
      assert.ok(network, `NAD ${nad.metadata.name} is a network`);
      assert.equal(nad.metadata.annotations!['k8s.v1.cni.cncf.io/resourceName'], `vfleet.io/${network.name}`);
      // No server or token file in a NAD: anyone who may create one writes its config.
      assert.equal('server' in JSON.parse(nad.spec.config), false);
      assert.equal('tokenFile' in JSON.parse(nad.spec.config), false);
      // As Multus hands it over (the device plugin's VF in deviceID), on a node with the init container's cni.json.
      const node: NodeConfig = { path: '/etc/vfleet/cni.json', ...cniNodeConfig(AGENT_SERVER) };
      const config = parseConfig(JSON.stringify({ ...JSON.parse(nad.spec.config), deviceID: '0000:3b:02.0' }), node);
      assert.equal(config.type, 'vfleet-cni');
      assert.equal(config.network, network.name);
      assert.equal(config.name, network.name);
      assert.equal(config.server, AGENT_SERVER);
      assert.equal(config.tokenFile, '/etc/vfleet/cni.token');
      assert.equal(config.deviceID, '0000:3b:02.0');
      assert.equal('token' in config, false, 'no token in a NAD');
      assert.deepEqual(JSON.parse(nad.spec.config).capabilities, network.ipam ? { mac: true, ips: true } : { mac: true });
    }
  });

  it('puts one pool per network in the ConfigMap, and wires it, the token and the node name into the agent', async () => {
    const objs = await manifests();
    const pools = parse(one<Obj & IConfigMap>(objs, 'ConfigMap').data!['pools.yaml']!) as { resourcePrefix: string; bandwidthUnitMbps: number; pools: Array<{ name: string; network: string }> };
    assert.deepEqual(pools, {
      resourcePrefix: 'vfleet.io',
      bandwidthUnitMbps: 100,
      pools: ['blue-pods', 'dpdk', 'red'].map((n) => ({ name: n, network: n })),
    });

    const ds = one<Obj & IDaemonSet>(objs, 'DaemonSet');
    const pod = ds.spec!.template.spec!;
    const agent = container(ds, 'agent');
    assert.deepEqual([agent.command, agent.args!.slice(0, 1)], [['sriovd'], ['agent']]);
    assert.equal(agent.image, `ghcr.io/vfleet/vfleet:${VERSION}`);
    assert.equal(argOf(agent, '--server'), AGENT_SERVER);
    assert.equal(argOf(agent, '--hostname'), '$(NODE_NAME)');
    assert.deepEqual(agent.env, [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }]);
    assert.equal(pod.hostNetwork, true);
    assert.equal(pod.hostPID, true);
    assert.equal(agent.securityContext?.privileged, true);

    // Each path the agent is given is where a volume of the right source is mounted.
    const volumeAt = (c: IContainer, path: string) => {
      const mount = c.volumeMounts!.find((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
      assert.ok(mount, `${path} is mounted in ${c.name}`);
      return { mount, volume: pod.volumes!.find((v) => v.name === mount.name)! };
    };
    const poolsFile = argOf(agent, '--device-plugin')!;
    const poolsVolume = volumeAt(agent, poolsFile);
    assert.equal(poolsVolume.volume.configMap?.name, 'vfleet-pools');
    assert.equal(poolsFile, `${poolsVolume.mount.mountPath}/pools.yaml`);
    const token = volumeAt(agent, argOf(agent, '--token-file')!);
    assert.deepEqual(token.volume.hostPath, { path: '/etc/vfleet/agent.token', type: 'File' });
    assert.equal(token.mount.readOnly, true);
    assert.equal(volumeAt(agent, argOf(agent, '--kubelet-dir')!).volume.hostPath?.path, '/var/lib/kubelet/device-plugins');
    assert.equal(volumeAt(agent, '/sys').volume.hostPath?.path, '/sys');
    assert.equal(volumeAt(agent, '/dev/vfio').volume.hostPath?.path, '/dev/vfio');
    const netns = volumeAt(agent, '/var/run/netns');
    assert.deepEqual([netns.volume.hostPath?.path, netns.mount.mountPropagation], ['/var/run/netns', 'HostToContainer']);

    // The init container puts vfleet-cni into the node's /opt/cni/bin, and its configuration into /etc/vfleet/cni.json, each by rename.
    const install = container(ds, 'install-cni');
    assert.equal(install.image, agent.image);
    const script = install.command!.at(-1)!;
    const renames = [...script.matchAll(/mv -f (\S+) (\S+)/g)].map((m) => ({ from: m[1]!, to: m[2]! }));
    const onNode = (path: string) => {
      const { mount, volume } = volumeAt(install, path);
      return volume.hostPath!.path + path.slice(mount.mountPath.length);
    };
    assert.deepEqual(renames.map((r) => onNode(r.to)), ['/opt/cni/bin/vfleet-cni', '/etc/vfleet/cni.json']);
    for (const r of renames) {
      assert.equal(r.from.slice(0, r.from.lastIndexOf('/')), r.to.slice(0, r.to.lastIndexOf('/')), 'renamed within one directory, so atomically');
      assert.ok(script.indexOf(`> ${r.from}`) >= 0 || script.indexOf(` ${r.from} &&`) >= 0, `${r.from} is written first`);
    }
    assert.deepEqual(JSON.parse(install.env!.find((e) => e.name === 'VFLEET_CNI_NODE_CONFIG_JSON')!.value!), { server: AGENT_SERVER, tokenFile: '/etc/vfleet/cni.token' });
    assert.equal(volumeAt(install, '/host/etc/vfleet').volume.hostPath?.type, 'Directory');
    // The agent itself gets its own token only, not the directory with the node token.
    assert.equal(agent.volumeMounts!.some((m) => m.name === 'vfleet-etc'), false);
    assert.ok(pod.initContainers!.includes(install));

    // Run as the init container would, the node's / being a temp dir: vfleet-cni reads the file it writes.
    const root = await mkdtemp(join(tmpdir(), 'vfleet-install-cni-'));
    try {
      await mkdir(join(root, 'host/opt/cni/bin'), { recursive: true });
      await mkdir(join(root, 'host/etc/vfleet'), { recursive: true });
      await writeFile(join(root, 'vfleet-cni'), '#!/bin/sh\n');
      const local = script.replaceAll('/usr/local/bin/vfleet-cni', join(root, 'vfleet-cni')).replaceAll(' /host/', ` ${root}/host/`);
      const env = Object.fromEntries(install.env!.map((e) => [e.name, e.value!]));
      const run = spawnSync('sh', ['-c', local], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const written = join(root, 'host/etc/vfleet/cni.json');
      assert.deepEqual(loadNodeConfig({ VFLEET_CNI_NODE_CONFIG: written }), { path: written, server: AGENT_SERVER, tokenFile: '/etc/vfleet/cni.token' });
      assert.deepEqual((await readdir(join(root, 'host/etc/vfleet'))).sort(), ['cni.json']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('rolls the agent pods when the pool file changes', async () => {
    const checksum = async () => one<Obj & IDaemonSet>(await manifests(), 'DaemonSet').spec!.template.metadata!.annotations!['vfleet.io/pools-sha256'];
    const before = await checksum();
    assert.equal(await checksum(), before, 'the same networks, the same pods');
    await ok(['network', 'create', 'green', '--tenant', 'blue', '--physnet', 'fabric', '--vlan', '400']);
    try {
      assert.notEqual(await checksum(), before);
    } finally {
      await ok(['network', 'delete', 'green']);
    }
  });

  it('takes --namespace and --image; -o json is a List of the same objects', async () => {
    const objs = await manifests('--namespace', 'sriov', '--image', 'registry.example:5000/net/vfleet@sha256:' + 'a'.repeat(64));
    assertValid(objs);
    assert.equal(one<Obj>(objs, 'Namespace').metadata.name, 'sriov');
    assert.ok(objs.filter((o) => o.kind !== 'Namespace' && !o.kind.startsWith('Cluster')).every((o) => o.metadata.namespace === 'sriov'));
    const ds = one<Obj & IDaemonSet>(objs, 'DaemonSet');
    assert.equal(container(ds, 'agent').image, 'registry.example:5000/net/vfleet@sha256:' + 'a'.repeat(64));

    const list = JSON.parse(await ok(['k8s', 'manifests', '--agent-server', AGENT_SERVER, '--namespace', 'sriov', '-o', 'json'])) as { apiVersion: string; kind: string; items: Obj[] };
    assert.deepEqual([list.apiVersion, list.kind], ['v1', 'List']);
    assertValid(list.items);
    assert.deepEqual(list.items.map((o) => `${o.kind}/${o.metadata.name}`), (await manifests('--namespace', 'sriov')).map((o) => `${o.kind}/${o.metadata.name}`));

    // A namespace the cluster owns is used, not declared.
    const inDefault = await manifests('--namespace', 'default');
    assert.equal(inDefault.some((o) => o.kind === 'Namespace'), false);
    assertValid(inDefault);
  });

  it('the validator refuses what the API server would: each broken copy of the output fails', async () => {
    const objs = await manifests();
    const broken: Array<[string, (o: Obj[]) => void, RegExp]> = [
      ['a namespace that is not a DNS label', (o) => (one<Obj>(o, 'DaemonSet').metadata.namespace = 'Vfleet_System'), /metadata.namespace "Vfleet_System"/],
      ['a container without an image', (o) => delete container(one<Obj & IDaemonSet>(o, 'DaemonSet'), 'agent').image, /image is required/],
      ['privileged as a string', (o) => (container(one<Obj & IDaemonSet>(o, 'DaemonSet'), 'agent').securityContext!.privileged = 'yes' as never), /privileged must be boolean/],
      ['a mount of no volume', (o) => (container(one<Obj & IDaemonSet>(o, 'DaemonSet'), 'agent').volumeMounts![0]!.name = 'nothing'), /names no volume/],
      ["a selector the pods don't match", (o) => (one<Obj & IDaemonSet>(o, 'DaemonSet').spec!.selector.matchLabels!['app.kubernetes.io/name'] = 'other'), /does not match/],
      ['a NAD config that is not a string', (o) => ((one<Nad>(o, 'NetworkAttachmentDefinition').spec as unknown as { config: object }).config = {}), /config must be string/],
      ['an unknown NAD field', (o) => ((one<Nad>(o, 'NetworkAttachmentDefinition').spec as unknown as Record<string, string>).conifg = 'x'), /additional properties \(conifg\)/],
      ['a label value with a space', (o) => (one<Obj>(o, 'ConfigMap').metadata.labels!['app.kubernetes.io/name'] = 'v fleet'), /is not a label value/],
    ];
    assert.deepEqual(objs.flatMap(problems), [], 'the output itself is valid');
    for (const [what, mutate, expected] of broken) {
      const copy = structuredClone(objs);
      mutate(copy);
      assert.match(copy.flatMap(problems).join('\n'), expected, what);
    }
  });

  it('refuses bad flags and a token that cannot see every network, with exit 2, printing nothing', async () => {
    for (const [args, message] of [
      [['--namespace', 'Bad_NS'], /--namespace must be a DNS-1123 label/],
      [['--namespace', 'a'.repeat(64)], /--namespace must be a DNS-1123 label/],
      [['--image', 'ghcr.io/vfleet/vfleet:1 ; rm -rf /'], /--image must be an image reference/],
      [['--agent-server', 'ftp://vfleet.example'], /must be an http/],
    ] as Array<[string[], RegExp]>) {
      const r = await cli(['k8s', 'manifests', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    }
    await fails(['k8s', 'manifests'], 2, /needs --server/, { SRIOV_SERVER: '' });
    // A tenant sees only its own networks: its pool file would drop the others' pools.
    const tenant = JSON.parse(await ok(['token', 'create', '--role', 'tenant:blue', '-o', 'json'])) as { token: string };
    const r = await cli(['k8s', 'manifests', '--agent-server', AGENT_SERVER], { SRIOV_TOKEN: tenant.token });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /FORBIDDEN: k8s manifests needs an admin or operator token.*this token is tenant:blue/);
    assert.equal(r.stdout, '');
  });

  it('prints no token, and warns when the nodes would be sent to their own loopback', async () => {
    const admin = (await readFile(rc.adminTokenFile, 'utf8')).trim();
    const r = await cli(['k8s', 'manifests']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.includes(admin), false);
    assert.equal(documents(r.stdout).some((o) => o.kind === 'Secret'), false);
    assert.match(r.stdout, /^# .*token create --role agent:N/m, 'the header says how to make the agent token');
    assert.match(r.stderr, /warning: the nodes would reach the controller at http:\/\/127\.0\.0\.1:\d+, their own loopback; pass --agent-server/);
  });

  it("refuses a network whose resource would be another network's bandwidth resource", async () => {
    await ok(['network', 'create', 'red-bw', '--tenant', 'blue', '--physnet', 'fabric', '--vlan', '500']);
    try {
      const r = await cli(['k8s', 'manifests', '--agent-server', AGENT_SERVER]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /vfleet\.io\/red-bw is also network red's bandwidth resource/);
      assert.equal(r.stdout, '');
    } finally {
      await ok(['network', 'delete', 'red-bw']);
    }
  });

  it('-o yaml prints any command\'s result as YAML', async () => {
    const yaml = parse(await ok(['network', 'list', '-o', 'yaml'])) as Network[];
    const json = JSON.parse(await ok(['network', 'list', '-o', 'json'])) as Network[];
    assert.deepEqual(yaml, json);
  });
});

describe('buildManifests', () => {
  const options = { namespace: 'vfleet', image: 'ghcr.io/vfleet/vfleet:0.1.0', server: AGENT_SERVER, version: VERSION };

  it('refuses a network whose bandwidth resource name would be too long for Kubernetes, and takes one a character shorter', () => {
    const long = 'n'.repeat(61);
    assert.throws(() => buildManifests([{ ...NETWORK, name: long, minTxRateMbps: 100 }], options), /bandwidth resource vfleet\.io\/n{61}-bw is longer than the 63 characters.*at most 60/);
    assertValid(buildManifests([{ ...NETWORK, name: 'n'.repeat(60), minTxRateMbps: 100 }], options));
  });

  it('refuses a network name the agent would refuse as a pool name (61-63 characters, even without a guarantee): every agent would fail to start', () => {
    for (const long of ['n'.repeat(61), 'n'.repeat(63)]) {
      assert.throws(() => buildManifests([NETWORK, { ...NETWORK, name: long }], options), new RegExp(`network ${long} .*pool file.*at most 60`));
    }
    // What it prints, the agent reads.
    const objects = buildManifests([NETWORK, { ...NETWORK, name: 'n'.repeat(60) }], options);
    const config = objects.find((o) => o.kind === 'ConfigMap') as IConfigMap;
    assert.deepEqual(parsePoolDocument(config.data!['pools.yaml']!).pools.map((p) => p.resourceName), [`vfleet.io/${NETWORK.name}`, `vfleet.io/${'n'.repeat(60)}`].sort());
  });
});

describe("README.md's Kubernetes section", () => {
  it('its pod example is a valid Pod asking for a pool and its bandwidth through a NAD the manifests make', async () => {
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
    const pods = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1]!) as Obj).filter((o) => o?.kind === 'Pod');
    assert.equal(pods.length, 1, 'one pod example');
    const pod = pods[0]! as Obj & { spec: { containers: IContainer[] } };
    assertValid([pod]);
    const [nadNamespace, nadName] = pod.metadata.annotations!['k8s.v1.cni.cncf.io/networks']!.split('/');
    const nad = { kind: 'NetworkAttachmentDefinition', apiVersion: 'k8s.cni.cncf.io/v1', metadata: { name: nadName!, namespace: nadNamespace! } };
    // The NAD the manifests would print for that network, in that namespace.
    const made = buildManifests([{ ...NETWORK, name: nadName!, minTxRateMbps: 2500 }], { namespace: nadNamespace!, image: 'ghcr.io/vfleet/vfleet:0.1.0', server: AGENT_SERVER, version: VERSION });
    const printed = made.find((o) => o.kind === nad.kind && o.metadata?.name === nadName) as Nad | undefined;
    assert.ok(printed, `the manifests make ${nadNamespace}/${nadName}`);
    const resource = printed.metadata.annotations!['k8s.v1.cni.cncf.io/resourceName']!;
    assert.deepEqual(Object.keys(pod.spec.containers[0]!.resources!.limits!).sort(), [resource, `${resource}-bw`]);
    // 25 units of 100 Mbps: the network's 2500 Mbps guarantee, as the README says to ask.
    assert.equal(pod.spec.containers[0]!.resources!.limits![`${resource}-bw`], 2500 / BANDWIDTH_UNIT_MBPS);
    const broken = structuredClone(pod);
    broken.spec.containers[0]!.resources!.limits![resource] = '0.5';
    assert.match(problems(broken).join('\n'), /must be a whole number/);
  });
});
