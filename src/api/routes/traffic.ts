/** Traffic over the last 15 minutes (GET /v1/traffic), from the counters agents report; memory only. */
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../controller/control-plane.js';
import type { TrafficQuery } from '../../controller/traffic.js';
import type { TrafficScope } from '../../domain/traffic.js';
import { invalid } from '../../host/errors.js';
import { errorResponses, HOST_NAME, IFNAME, NAME, ref, strictObject } from '../schemas.js';

const query = strictObject({
  scope: { type: 'string', enum: ['vf', 'pf', 'tenant'], description: 'vf (default), pf (staff only) or tenant' },
  host: HOST_NAME,
  pf: { ...IFNAME, description: 'a PF netdev name, like ens1f0' },
  vf: { type: 'string', pattern: '^[0-9]{1,4}$', description: 'a VF index, 0-4095 (with pf)' },
  tenant: NAME,
  network: NAME,
});

type Query = Omit<TrafficQuery, 'vf' | 'scope'> & { scope?: TrafficScope; vf?: string };

function parseQuery(q: Query): TrafficQuery {
  const vf = q.vf === undefined ? undefined : Number(q.vf);
  if (vf !== undefined && vf > 4095) throw invalid(`query parameter vf must be a VF index 0-4095, got ${vf}`, 'vf');
  return { ...q, vf };
}

export function trafficRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get<{ Querystring: Query }>(
    '/v1/traffic',
    {
      schema: {
        tags: ['traffic'],
        summary: 'Traffic rates over the last 15 minutes, per VF, PF or tenant (a tenant: its own VFs and tenant series)',
        description:
          'Rates (bytes, packets and drops per second) per bucket, from the counter deltas agents send with their reports; kept in the ' +
          'controller’s memory only, so a restarted controller starts empty. scope=pf is for staff. A tenant sees the VFs its allocations ' +
          'hold, from when each allocation was made. Counters a host cannot read are listed in `missing`, never shown as zeros.',
        querystring: query,
        response: { 200: ref('TrafficReport', 'series of rates, columnar'), ...errorResponses },
      },
    },
    (request) => control.traffic.report(request.actor, parseQuery(request.query)),
  );
}
