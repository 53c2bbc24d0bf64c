/**
 * Live migrations (`sriovctl migrate`, `sriovctl migrations`), and the hook
 * an external orchestrator drives (prepare, complete, abort).
 */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import type { MigrationRequest } from '../../controller/migration-request.js';
import type { Migration } from '../../domain/types.js';
import { invalid } from '../../host/errors.js';
import { answerFromMemory, PAGED, PAGE_QUERY } from '../paging.js';
import { errorResponses, HOST_NAME, IFNAME, listOf, ref, strictObject } from '../schemas.js';

const tags = ['migrations'];
type MigrationQuery = { state?: Migration['state']; allocation?: string; drain?: string; host?: string };
/** Oldest first: creation time (ISO 8601 sorts as text), then id for those created in the same millisecond. */
const migrationKey = (m: Migration) => `${m.createdAt}|${m.id}`;
const MAX_WAIT_S = 60;
const ID = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[!-~]+$', description: 'an id, in printable ASCII' } as const;
const idParams = strictObject({ id: ID }, ['id']);
const waitQuery = strictObject({ wait: { type: 'string', maxLength: 20, description: `whole seconds, 0-${MAX_WAIT_S}` } });

const startBody = strictObject(
  {
    allocation: { ...ID, description: 'the allocation to move: its id or a unique prefix' },
    to: strictObject({ host: HOST_NAME, pf: { ...IFNAME, type: ['string', 'null'], description: 'a PF netdev name; default: the scheduler’s choice' } }, ['host']),
    hypervisor: { type: 'string', enum: ['libvirt', 'qemu', 'hook'], description: 'who moves a VM; refused for a container' },
    migrateUri: { type: 'string', maxLength: 512, description: 'qemu: tcp:<IPv4>:<port> or unix:<absolute path>; libvirt: qemu+ssh://<host>/system' },
    dryRun: { type: 'boolean', description: 'plan and check only' },
  },
  ['allocation', 'to'],
);

/** `wait` as whole seconds 0-60, in milliseconds; 0 without it. */
function waitMs(wait: string | undefined): number {
  if (wait === undefined) return 0;
  if (!/^[0-9]{1,2}$/.test(wait) || Number(wait) > MAX_WAIT_S) throw invalid(`query parameter wait must be whole seconds 0-${MAX_WAIT_S}, got ${JSON.stringify(wait.slice(0, 20))}`);
  return Number(wait) * 1000;
}

export function migrationRoutes(app: FastifyInstance, control: ControlPlane): void {
  const service = control.migrations;

  app.post<{ Body: MigrationRequest }>(
    '/v1/migrations',
    {
      schema: {
        tags,
        summary: 'Migrate an allocation’s workload to another PF or host (admin, operator)',
        description:
          'Checks everything, reserves a VF at the destination with the same MAC and network (201), and drives the migration on as the agents report. ' +
          'A refusal changes nothing and says why; when nothing fits it names the best alternative. With dryRun, the plan (200) and nothing written.',
        body: startBody,
        response: { 200: ref('Migration', 'the plan (dry run)'), 201: ref('Migration', 'the migration, at step prepare'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const m = await service.start(request.actor, { ...request.body, to: { host: request.body.to.host, pf: request.body.to.pf ?? null } });
      return reply.code(request.body.dryRun ? 200 : 201).send(m);
    },
  );

  app.get(
    '/v1/migrations',
    {
      schema: {
        tags,
        summary: 'List migrations, oldest first (a tenant sees its own)',
        description: PAGED,
        querystring: strictObject({
          ...PAGE_QUERY,
          state: { type: 'string', enum: ['running', 'rolling-back', 'completed', 'failed', 'aborted'] },
          allocation: ID,
          drain: { type: 'string', maxLength: 300, pattern: '^[!-~]+$' },
          host: HOST_NAME,
        }),
        response: { 200: listOf('Migration', 'migrations'), ...errorResponses },
      },
    },
    (request, reply) => answerFromMemory(request, reply, 'migrations', (filters) => service.list(request.actor, filters as MigrationQuery), migrationKey),
  );

  app.get<{ Params: { id: string }; Querystring: { wait?: string } }>(
    '/v1/migrations/:id',
    {
      schema: {
        tags,
        summary: 'Get a migration, or wait for it to end',
        description: `With \`wait=S\` (whole seconds, up to ${MAX_WAIT_S}) the answer comes once it completed, failed or was aborted, or after S seconds as it is then.`,
        params: idParams,
        querystring: waitQuery,
        response: { 200: ref('Migration', 'the migration'), ...errorResponses },
      },
    },
    (request) => service.wait(request.actor, request.params.id, waitMs(request.query.wait)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/migrations/:id/abort',
    {
      schema: {
        tags,
        summary: 'Abort a migration (admin, operator)',
        description: 'Before the switch: rolls back (the destination released, a VM’s VF plugged back). After it: the migration finishes, and its history says so. While a hypervisor migrates the VM: 409.',
        params: idParams,
        response: { 200: ref('Migration', 'the migration, rolling back (or as it is)'), ...errorResponses },
      },
    },
    (request) => service.abort(request.actor, request.params.id),
  );

  app.post<{ Params: { id: string }; Querystring: { wait?: string } }>(
    '/v1/migrations/:id/prepare',
    {
      schema: {
        tags,
        summary: 'Hook: wait until the destination VF is prepared, and get its hostdev XML',
        description: 'For `hypervisor: hook`. `hostdevXml` is null until the destination agent configured the VF (then the step is switch).',
        params: idParams,
        querystring: waitQuery,
        response: {
          200: { description: 'the migration and the destination’s libvirt hostdev interface XML', type: 'object', properties: { migration: { $ref: 'Migration#' }, hostdevXml: { type: ['string', 'null'] } } },
          ...errorResponses,
        },
      },
    },
    (request) => service.prepare(request.actor, request.params.id, waitMs(request.query.wait)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/migrations/:id/complete',
    {
      schema: {
        tags,
        summary: 'Hook: the orchestrator moved the VM and plugged the destination VF',
        description: 'The destination becomes attached and the source is released. Idempotent.',
        params: idParams,
        response: { 200: ref('Migration', 'the migration, releasing its source'), ...errorResponses },
      },
    },
    (request) => service.complete(request.actor, request.params.id),
  );
}
