import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Network } from '../../domain/types.js';
import { SriovError } from '../../host/errors.js';
import { buildManifests, DEFAULT_NAMESPACE, defaultImage, NODE_LABEL, PATHS, parseImage, parseNamespace, renderYaml } from '../../k8s/manifests.js';
import type { CliContext } from '../context.js';
import type { ApiClient } from '../remote/client.js';
import { parseServerUrl } from '../remote/config.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface ManifestFlags {
  namespace: string;
  image?: string;
  agentServer?: string;
}

export function registerK8sCommands(program: Command, cli: CliContext): void {
  const k8s = program.command('k8s').description('Kubernetes: deploy the agent, device plugin and CNI plugin (remote)');

  k8s
    .command('manifests')
    .description('print the objects that deploy vfleet on a cluster, from the controller\'s networks: kubectl apply -f -')
    .option('--namespace <N>', 'namespace of the agent and the NetworkAttachmentDefinitions', DEFAULT_NAMESPACE)
    .option('--image <I>', `the vfleet image (default ${defaultImage(VERSION)})`)
    .option('--agent-server <URL>', "the controller URL as the nodes reach it, with the host's resolver (default: the server this command talks to)")
    .action(async (flags: ManifestFlags) => {
      const namespace = parseNamespace(flags.namespace);
      const image = parseImage(flags.image ?? defaultImage(VERSION));
      const api = await cli.api();
      const server = flags.agentServer === undefined ? api.server : parseServerUrl(flags.agentServer);
      await requireStaff(api);
      const networks = await api.all<Network>('/v1/networks');
      const objects = buildManifests(networks, { namespace, image, server, version: VERSION });
      if (isLoopback(server)) {
        process.stderr.write(`sriovctl: warning: the nodes would reach the controller at ${server}, their own loopback; pass --agent-server URL\n`);
      }
      if (cli.opts.output === 'json') {
        process.stdout.write(JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2) + '\n');
      } else {
        process.stdout.write(renderYaml(objects, header(server, networks.length)));
      }
    });
}

/** How to get a node ready, as comments above the objects. Never a token: they are made per node. */
function header(server: string, networks: number): string[] {
  return [
    `vfleet ${VERSION} on Kubernetes: sriovctl k8s manifests, from the controller at ${server} (${networks} network${networks === 1 ? '' : 's'}).`,
    'Needs Multus. Before an SR-IOV node N runs the agent, give it its own tokens (mode 0600, root):',
    `  sriovctl token create --role agent:N    -> ${PATHS.agentToken} on N`,
    `  sriovctl token create --role node:N     -> ${PATHS.cniToken} on N (read by vfleet-cni)`,
    `  kubectl label node N ${NODE_LABEL}=true`,
    'N is the Kubernetes node name, which must be the host name vfleet knows the node by.',
    `The agent's init container writes ${PATHS.cniNodeConfig} on N (the controller, and ${PATHS.cniToken}): vfleet-cni obeys it, and a NAD cannot redirect the plugin or its token.`,
  ];
}

/**
 * A tenant token lists only its own networks (a node token, every one, but it
 * is a node's): the pool file would silently leave pools out, and applying it
 * would take them from the cluster.
 */
async function requireStaff(api: ApiClient): Promise<void> {
  const { role } = await api.get<{ role: string }>('/v1/info');
  if (role !== 'admin' && role !== 'operator') {
    throw new SriovError('FORBIDDEN', `k8s manifests needs an admin or operator token, which sees every network; this token is ${role}`, { nothingChanged: true });
  }
}

function isLoopback(server: string): boolean {
  const host = new URL(server).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}
