/**
 * The etcd calls the store makes (range and txn), each with a deadline, and
 * etcd's failures turned into the store's errors: etcd unreachable or
 * without quorum is UNAVAILABLE (HTTP 503, retry later) naming the
 * endpoints, so an operator knows which cluster to look at.
 */
import type { Etcd3, ICompare, IKeyValue, IRangeRequest, IRequestOp } from 'etcd3';
import { GRPCInvalidArgumentError, GRPCOutOfRangeError, EtcdPermissionDeniedError, EtcdAuthenticationFailedError, EtcdInvalidAuthTokenError, GRPCUnauthenticatedError } from 'etcd3';
import { SriovError } from '../../host/errors.js';
import type { AllocationIndex } from './allocation-index.js';

/** Keys per range request: a page of 256 allocation records stays well under a few MB. */
export const RANGE_PAGE = 256;

export interface Kv {
  key: string;
  value: string;
  /** The key's last modification, for the commit's compare. */
  mod: string;
}

/** A read at a revision the cluster compacted away: the transaction starts again on a fresh snapshot. */
export class SnapshotGone extends Error {}

export class EtcdKv {
  /** The store's memory of allocations by host, tenant and network (allocation-index.ts), for filtered lists. */
  index: AllocationIndex | null = null;
  /** Told the keys of each Txn that wrote, or may have (its answer lost): what caches them drops them. */
  onWrite: (keys: Iterable<string>) => void = () => {};

  constructor(
    private readonly client: Etcd3,
    private readonly endpoints: readonly string[],
    private readonly callTimeoutMs: number,
  ) {}

  /** One page of [key, end) at `revision` (the newest when null), with the revision it was read at. */
  async range(req: IRangeRequest): Promise<{ kvs: Kv[]; more: boolean; revision: string; count: number }> {
    const res = await this.call(() => this.client.kv.range(req, this.options()));
    return { kvs: res.kvs.map(toKv), more: res.more, revision: res.header.revision, count: Number(res.count) };
  }

  /** Several ranges in one read-only Txn: one round trip, all at one revision. */
  async rangeMany(reqs: IRangeRequest[]): Promise<{ revision: string; results: Array<{ kvs: Kv[]; more: boolean }> }> {
    const res = await this.call(() => this.client.kv.txn({ compare: [], success: reqs.map((r) => ({ request_range: r })), failure: [] }, this.options()));
    return {
      revision: res.header.revision,
      results: res.responses.map((r) => ({ kvs: r.response_range.kvs.map(toKv), more: r.response_range.more })),
    };
  }

  /** One etcd Txn: true when every compare held (and so every op was applied). */
  async txn(compare: ICompare[], success: IRequestOp[]): Promise<boolean> {
    const res = await this.call(() => this.client.kv.txn({ compare, success, failure: [] }, this.options()));
    return res.succeeded;
  }

  private options() {
    return { deadline: new Date(Date.now() + this.callTimeoutMs) };
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.translate(err);
    }
  }

  private translate(err: unknown): Error {
    if (err instanceof SriovError) return err;
    if (err instanceof GRPCOutOfRangeError || (err instanceof Error && /compacted/.test(err.message))) return new SnapshotGone(err.message);
    const where = this.endpoints.join(', ');
    if (err instanceof EtcdPermissionDeniedError) {
      return new SriovError('PERMISSION_DENIED', `etcd at ${where} refused the store's request: ${err.message}; grant the user read/write on the prefix`, { object: where, nothingChanged: true, cause: err });
    }
    if (err instanceof EtcdAuthenticationFailedError || err instanceof EtcdInvalidAuthTokenError || err instanceof GRPCUnauthenticatedError) {
      return new SriovError('UNAUTHENTICATED', `etcd at ${where} refused the credentials: ${err.message}; check --etcd-user and --etcd-password-file`, { object: where, nothingChanged: true, cause: err });
    }
    // A request etcd itself calls malformed is a bug here (e.g. too many ops), not an outage.
    if (err instanceof GRPCInvalidArgumentError) return err;
    const why = err instanceof Error ? err.message : String(err);
    return new SriovError('UNAVAILABLE', `etcd at ${where} cannot serve the store now (${why}); nothing was written, retry later`, { object: where, nothingChanged: true, cause: err });
  }
}

function toKv(kv: IKeyValue): Kv {
  return { key: kv.key.toString(), value: kv.value.toString(), mod: kv.mod_revision };
}

/** The end of the range of keys that start with `prefix`: its last byte plus one. */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix);
  b[b.length - 1] = b[b.length - 1]! + 1;
  return b.toString();
}
