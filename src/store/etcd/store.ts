/**
 * The distributed store: the Store interface over etcd v3, for several
 * controllers sharing one keyspace (keys.ts). A transaction runs `fn` on a
 * buffer: reads are taken at one snapshot revision and remembered, writes
 * are held back; the commit is ONE etcd Txn whose compares say "nothing I
 * read changed" and whose ops are the writes. So a commit lands whole or not
 * at all, and of two controllers racing for one claim key, one commits and
 * the other re-runs `fn`, which then sees the winner and refuses.
 */
import { Etcd3, type IOptions } from 'etcd3';
import { SriovError } from '../../host/errors.js';
import { CatalogueCache } from '../catalogue-cache.js';
import type { CommittedReads, Leadership, Store, StoreChange, StoreTx } from '../store.js';
import { AllocationIndex } from './allocation-index.js';
import { AuditSequencer } from './audit-sequencer.js';
import { keys as keyspace, type Keys } from './keys.js';
import { ETCD_DEFAULT_LIMITS, type TxnLimits } from './buffer.js';
import { EtcdKv } from './kv.js';
import { CommitPipeline } from './pipeline.js';
import { isRead, isSmallRead, scopedTx, SharedReads } from './run.js';

export interface EtcdStoreOptions {
  /** The endpoints as the operator gave them: UNAVAILABLE errors name them. */
  endpoints: readonly string[];
  /** How long one etcd call may take before the store answers UNAVAILABLE. Default 5 s. */
  callTimeoutMs?: number;
  /** Re-runs of a transaction whose reads changed before it could commit, before CONFLICT. Default 20. */
  maxRetries?: number;
  /** What one etcd Txn may carry: etcd's --max-txn-ops and --max-request-bytes (defaults 128 and 1.5 MiB). */
  txnLimits?: TxnLimits;
  /** Group-commit batches committing at once (pipeline.ts). Default 4; 1 commits one batch at a time. */
  pipelineDepth?: number;
  /** What the allocation index's watch recovers from by itself (allocation-index.ts), for the log. */
  onError?: (err: Error) => void;
}

/** What `EtcdStore.open` needs: the client's options (hosts, TLS, auth) and the keyspace prefix. */
export interface EtcdOpenOptions extends Omit<EtcdStoreOptions, 'endpoints'> {
  client: IOptions;
  /** Default `/vfleet/`. */
  prefix?: string;
  /** Named in errors; default the client's hosts. */
  endpoints?: readonly string[];
}

const DEFAULT_CALL_TIMEOUT_MS = 5000;
const DEFAULT_MAX_RETRIES = 20;
/** Transactions per group commit; fewer when their reads and writes would not fit one Txn (run.ts). */
const BATCH = 32;
const DEFAULT_PIPELINE_DEPTH = 4;
/** Reads of the audit log: outside a transaction they wait for this store's appends to be numbered. */
const AUDIT_READS = new Set(['listEvents', 'getLastEventSeq']);
/**
 * How long a controller may answer from memory a catalogue record or token
 * another controller has changed, if its watch stalls (catalogue-cache.ts).
 */
const CATALOGUE_TTL_MS = 1000;

export class EtcdStore implements Store {
  readonly kind = 'etcd' as const;
  readonly tx: StoreTx;
  /** `tx`'s reads (what is committed, queued behind no writer), the catalogue's and tokens' from memory while a watch runs. */
  readonly committed: CommittedReads;
  protected readonly catalogue = new CatalogueCache({ ttlMs: CATALOGUE_TTL_MS, following: false });
  private readonly kv: EtcdKv;
  private readonly maxRetries: number;
  private readonly pipeline: CommitPipeline;
  private readonly sequencer: AuditSequencer;

  /** Takes the client over: `close` closes it. */
  constructor(
    readonly client: Etcd3,
    readonly keys: Keys,
    private readonly options: EtcdStoreOptions,
  ) {
    this.kv = new EtcdKv(client, options.endpoints, options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
    this.kv.index = new AllocationIndex(client, keys, options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, options.onError);
    this.maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    const limits = options.txnLimits ?? ETCD_DEFAULT_LIMITS;
    this.sequencer = new AuditSequencer(this.kv, keys, { limits, onError: options.onError });
    this.pipeline = new CommitPipeline(this.kv, this.keys, {
      maxRetries: this.maxRetries,
      limits,
      maxBatch: BATCH,
      depth: options.pipelineDepth ?? DEFAULT_PIPELINE_DEPTH,
      inbox: () => this.sequencer.inKey(),
    });
    // Each call outside a transaction is a transaction of its own: atomic, and retried like one;
    // a read needs no commit, so it does not queue behind writers. A read of the audit log first
    // waits for this store's appends to be numbered (audit-sequencer.ts), so a caller reads its own.
    const reads = new SharedReads(this.kv, this.keys, this.maxRetries);
    const read = (call: (tx: StoreTx) => Promise<unknown>, method: string, args: unknown[]) => reads.run(call, isSmallRead(method, args));
    this.tx = scopedTx((call, method, args) => {
      if (!isRead(method)) return this.transaction(call);
      return AUDIT_READS.has(method) ? this.sequencer.settled().then(() => read(call, method, args)) : read(call, method, args);
    });
    this.committed = this.catalogue.over(this.tx);
    const cached = [keys.ranges.tenants, keys.ranges.physnets, keys.ranges.networks, keys.ranges.tokens, keys.ranges.segments, keys.ranges.tokenHashes];
    this.kv.onWrite = (written) => {
      let drop = false;
      for (const key of written) {
        if (key.startsWith(this.sequencer.own)) this.sequencer.wrote();
        else drop ||= cached.some((prefix) => key.startsWith(prefix));
      }
      if (drop) this.catalogue.drop();
    };
    this.sequencer.start(client);
  }

  /** Connects and proves etcd answers (a clear UNAVAILABLE naming the endpoints if not). */
  static async open(options: EtcdOpenOptions): Promise<EtcdStore> {
    const hosts = Array.isArray(options.client.hosts) ? options.client.hosts : [options.client.hosts];
    const endpoints = options.endpoints ?? hosts;
    const client = new Etcd3(options.client);
    const store = new EtcdStore(client, keyspace(options.prefix), { ...options, endpoints });
    try {
      await store.kv.range({ key: Buffer.from(store.keys.auditSeq) });
      return store;
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  /** Queued, and committed with the others queued beside it (run.ts: group commit; pipeline.ts). */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pipeline.push({ fn, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  /** The watch and the election come with openStore (store/open.ts), which overrides these. */
  watch(_listener: (changes: StoreChange[]) => void): () => void {
    throw new SriovError('UNSUPPORTED', 'this etcd store was opened without a watch; open it through openStore');
  }

  campaign(_candidate: string): Promise<Leadership> {
    return Promise.reject(new SriovError('UNSUPPORTED', 'this etcd store was opened without an election; open it through openStore'));
  }

  /** After this store's own appends are numbered, if etcd answers soon enough (else a pass elsewhere, or at the next start, numbers them). */
  async close(): Promise<void> {
    await this.sequencer.close();
    this.kv.index?.close();
    this.client.close();
  }
}
