/**
 * The agent protocol: a host's agent reports its inventory and the outcome
 * of its work (which is also its heartbeat), and long-polls for the host's
 * desired state.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import { MAX_CLAIM_VFS } from '../../controller/device-claims.js';
import type { DeviceClaimRequest } from '../../controller/device-view.js';
import type { AgentReport } from '../../controller/hosts.js';
import { agentHostOf } from '../../domain/actor.js';
import { INVENTORY_HASH_PATTERN } from '../../host/inventory-hash.js';
import { UploadGate } from '../upload-gate.js';
import { AGENT_COUNTERS, DIGITS, errorResponses, HOST_NAME, IFNAME, listOf, NAME, PCI_ADDRESS, ref, RESOURCE_NAME, strictObject, TRAFFIC_DELTAS } from '../schemas.js';

const tags = ['agent'];
const MAX_WAIT_SECONDS = 60;
/** An inventory of a host with many PFs of 256 VFs each runs to megabytes. */
const REPORT_BODY_LIMIT = 16 * 1024 * 1024;

const reportBody = strictObject(
  {
    host: { ...HOST_NAME, description: 'the reporting host: for a report without inventory by a caller other than the host’s agent' },
    inventory: { $ref: 'HostInventory#', description: 'only when it changed since the last report, or the controller answered inventoryNeeded' },
    inventoryHash: { type: 'string', pattern: INVENTORY_HASH_PATTERN, description: 'sha256 (lower-case hex) of the inventory JSON: sent with every report' },
    statuses: {
      type: 'array',
      maxItems: 100_000,
      items: strictObject(
        {
          id: { type: 'string', minLength: 1, maxLength: 64 },
          state: { type: 'string', enum: ['configured', 'attached', 'releasing', 'released', 'failed'] },
          reason: { type: ['string', 'null'], maxLength: 4096 },
          hostIfName: IFNAME,
        },
        ['id', 'state'],
      ),
    },
    events: {
      type: 'array',
      maxItems: 10_000,
      items: strictObject(
        {
          action: { type: 'string', enum: ['drift.repaired', 'orphan.scrubbed', 'allocation.recovered', 'policy.failed'] },
          // Printed in `sriovctl events` and the console: one word, so no agent can print a forged row of the audit log.
          object: { type: 'string', maxLength: 256, pattern: '^[!-~]+$', description: 'what the event is about, like allocation/ID: printable ASCII, no spaces' },
          detail: { type: 'string', maxLength: 8192 },
        },
        ['action', 'object', 'detail'],
      ),
    },
    results: {
      type: 'array',
      maxItems: 1_000,
      description: 'hypervisor task results (HypervisorTaskResult), for tasks of the desired state',
      items: strictObject(
        {
          id: { type: 'string', minLength: 1, maxLength: 600, pattern: '^[!-~]+$' },
          ok: { type: 'boolean' },
          detail: { type: 'string', maxLength: 8192 },
          result: strictObject(
            {
              statuses: { type: 'array', maxItems: 1_000, items: { type: 'string', maxLength: 64, pattern: '^[!-~]+$' } },
              downtimeMs: { type: ['number', 'null'], minimum: 0 },
              totalMs: { type: ['number', 'null'], minimum: 0 },
            },
            ['statuses', 'downtimeMs', 'totalMs'],
          ),
        },
        ['id', 'ok', 'detail'],
      ),
    },
    counters: { ...AGENT_COUNTERS, description: 'the agent’s own counters, cumulative since it started (reconcile time, drift, orphans, repairs): for /metrics' },
    traffic: TRAFFIC_DELTAS,
  },
  // inventoryHash is what agents send with every report; a report with its inventory is accepted without it (an agent from
  // before hashes: controllers upgrade first). Without inventory, the controller asks for the hash (400).
  [],
);

export function agentRoutes(app: FastifyInstance, control: ControlPlane, uploads = new UploadGate()): void {
  app.post<{ Body: AgentReport }>(
    '/v1/agent/report',
    {
      bodyLimit: REPORT_BODY_LIMIT,
      config: { agent: true },
      // After authentication, before the body is read: a report large enough to carry an inventory takes a place at the gate.
      onRequest: async (request, reply) => {
        if (!UploadGate.large(request.headers['content-length'])) return;
        reply.raw.once('close', uploads.enter(agentHostOf(request.actor) ?? undefined));
      },
      schema: {
        tags,
        summary: 'Report inventory and allocation outcomes (also the heartbeat)',
        description:
          'Only for the agent’s own host (`agent:<host>` and `inventory.hostname` must agree). `inventoryHash` comes with every report, ' +
          'the inventory only when it changed: a report without it proves liveness and writes no inventory. When the controller does not ' +
          'know that hash (it restarted, or the last inventory went to another controller) it answers 409 CONFLICT with ' +
          '`data.inventoryNeeded: true` and changes nothing: send the same report again with the inventory. A report of more than 64 KB ' +
          'while the controller takes as many inventories as it takes at once is refused 503 UNAVAILABLE with `Retry-After`, unread: ' +
          'send it again after a random wait of 1-3 times that.',
        body: reportBody,
        response: {
          200: { description: 'the host as now recorded', type: 'object', properties: { host: HOST_NAME, state: { type: 'string', enum: ['ready', 'unreachable'] } } },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const host = await control.hosts.receive(request.actor, request.body);
      return { host: host.name, state: host.state };
    },
  );

  app.get<{ Querystring: { host: string; after?: string; wait?: string } }>(
    '/v1/agent/desired',
    {
      config: { agent: true },
      schema: {
        tags,
        summary: 'Long-poll the host’s desired state',
        description: `Answers once the revision differs from \`after\`, or after \`wait\` seconds (at most ${MAX_WAIT_SECONDS}).`,
        querystring: strictObject(
          {
            host: HOST_NAME,
            after: { type: 'string', maxLength: 64, description: 'the revision the agent has' },
            wait: { ...DIGITS, description: `seconds to hold the request; capped at ${MAX_WAIT_SECONDS}` },
          },
          ['host'],
        ),
        response: { 200: ref('DesiredState', 'the host’s policies and allocations'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { host, after, wait } = request.query;
      const waitMs = Math.min(Number(wait ?? 0), MAX_WAIT_SECONDS) * 1000;
      const state = await Promise.race([control.hosts.desired(request.actor, host, after, waitMs), clientGone(reply)]);
      // Nobody to answer: tell Fastify not to write to the closed socket.
      return state ?? reply.hijack();
    },
  );

  app.get<{ Querystring: { host: string; after?: string; wait?: string } }>(
    '/v1/agent/devices',
    {
      config: { agent: true },
      schema: {
        tags,
        summary: 'Long-poll the host’s device view (kubelet device plugin)',
        description:
          'Which networks the host’s VFs can serve, who holds which VF, and what bandwidth is committed. ' +
          `Answers once the revision differs from \`after\`, or after \`wait\` seconds (at most ${MAX_WAIT_SECONDS}). ` +
          'For the host’s agent (`agent:<host>`) and staff.',
        querystring: strictObject(
          {
            host: HOST_NAME,
            after: { type: 'string', maxLength: 64, description: 'the revision the plugin has' },
            wait: { ...DIGITS, description: `seconds to hold the request; capped at ${MAX_WAIT_SECONDS}` },
          },
          ['host'],
        ),
        response: { 200: ref('DeviceView', 'the host’s device view'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { host, after, wait } = request.query;
      const waitMs = Math.min(Number(wait ?? 0), MAX_WAIT_SECONDS) * 1000;
      const view = await Promise.race([control.devices.view(request.actor, host, after, waitMs), clientGone(reply)]);
      return view ?? reply.hijack();
    },
  );

  app.post<{ Body: DeviceClaimRequest }>(
    '/v1/agent/device-claims',
    {
      config: { agent: true },
      schema: {
        tags,
        summary: 'Claim the VFs the kubelet gave a container (device plugin Allocate)',
        description:
          'One pending allocation per VF, pinned to it, for `network`, admitted like any allocation (bandwidth, link speed, isolation); ' +
          'all or nothing. The same claim again returns the same allocations. A VF held otherwise: 409 BUSY naming the holder; ' +
          'a PF without the headroom: 409 NO_CAPACITY naming the PF and its headroom. The pod’s CNI ADD with `deviceID` binds the claim. ' +
          'For the host’s agent (`agent:<host>`) and staff.',
        body: strictObject(
          {
            host: HOST_NAME,
            resource: RESOURCE_NAME,
            network: NAME,
            // Duplicates are refused by the controller, which names the VF (Ajv would say "items ## 1 and 0").
            pciAddresses: { type: 'array', minItems: 1, maxItems: MAX_CLAIM_VFS, items: PCI_ADDRESS, description: `1-${MAX_CLAIM_VFS} VF PCI addresses, each once` },
          },
          ['host', 'resource', 'network', 'pciAddresses'],
        ),
        response: {
          200: { description: 'the claims, in the order of pciAddresses', type: 'object', properties: { allocations: listOf('Allocation', 'one claim per VF') } },
          ...errorResponses,
        },
      },
    },
    async (request) => ({ allocations: await control.devices.claim(request.actor, request.body) }),
  );
}

/** Resolves with null when the connection closes before the reply was sent. */
function clientGone(reply: FastifyReply): Promise<null> {
  return new Promise((resolve) => {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) resolve(null);
    });
  });
}
