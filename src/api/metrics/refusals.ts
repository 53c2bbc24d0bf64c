/**
 * Scheduler refusals by reason: each NO_CAPACITY the API answers a request
 * for a VF with (POST /v1/allocations, a device plugin's claim), counted by
 * the reason the scheduler gives in `data.reason` (scheduler/refusal.ts), a
 * word of a fixed list; anything else (the MAC pool exhausted) is `other`.
 */
import type { FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { SriovError } from '../../host/errors.js';
import { REFUSAL_REASONS } from '../../scheduler/refusal.js';
import type { MetricsContext } from './family.js';

/** The routes that ask the scheduler for a VF. */
const PLACING = new Set(['POST /v1/allocations', 'POST /v1/agent/device-claims']);
const REASONS: ReadonlySet<string> = new Set([...REFUSAL_REASONS, 'other']);

export function refusalMetrics({ registry, app }: MetricsContext): void {
  const refusals = new Counter({
    name: 'vfleet_scheduler_refusals_total',
    help: 'Requests for a VF the API refused with NO_CAPACITY, by the reason the scheduler gave',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  // Every reason from the start, at 0: a rate() over a reason seen for the first time has a point to start from.
  for (const reason of REASONS) refusals.inc({ reason }, 0);
  app.addHook('onError', async (request, _reply, error) => {
    if (!(error instanceof SriovError) || error.code !== 'NO_CAPACITY' || !placing(request)) return;
    const reason = error.details.data?.reason;
    refusals.inc({ reason: typeof reason === 'string' && REASONS.has(reason) ? reason : 'other' });
  });
}

function placing(request: FastifyRequest): boolean {
  return PLACING.has(`${request.method} ${request.routeOptions.url ?? ''}`);
}
