/**
 * Answers that may be stale. While the store does not answer (etcd lost its
 * quorum), the controller answers reads from its memory (controller/
 * stale-reads.ts), and every successful GET of the API says so, whether it came from
 * memory or from the store just then:
 *   Warning: 110 - "Response is Stale"          (RFC 7234, 5.5.1)
 *   Vfleet-Store-Unreachable-Since: <ISO 8601>   (since when)
 * Lists are JSON arrays, so the mark is in headers, for every answer alike.
 * A store failure seen by any request (a write's 503) marks the store
 * unreachable too, so the reads after it do not wait out the store's timeout;
 * a write that succeeds marks it reachable again.
 */
import type { FastifyInstance } from 'fastify';
import type { StoreHealth } from '../controller/store-health.js';

export const STALE_WARNING = '110 - "Response is Stale"';
export const UNREACHABLE_SINCE = 'vfleet-store-unreachable-since';

export function registerStaleness(app: FastifyInstance, health: StoreHealth): void {
  app.addHook('onError', async (_request, _reply, err) => {
    health.failed(err);
  });
  // A write that succeeded was committed: the store answers again, so the reads after it (the writer's
  // own, first) come from the store, not from memory, without waiting for the next probe.
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.method !== 'GET' && reply.statusCode < 300 && request.url.startsWith('/v1/')) health.answered();
    const since = health.unreachableSince;
    if (since !== null && request.method === 'GET' && reply.statusCode < 300 && request.url.startsWith('/v1/')) {
      void reply.header('warning', STALE_WARNING).header(UNREACHABLE_SINCE, since.toISOString());
    }
    return payload;
  });
}
