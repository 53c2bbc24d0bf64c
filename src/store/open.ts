/**
 * Opens the store `sriovd --store` names: SQLite in the data dir by default,
 * or etcd with `etcd://h1:2379,h2:2379[/prefix]` (and the TLS and auth
 * options). Everything is checked before anything connects; an etcd that
 * does not answer at start is an error naming its endpoints, not a store
 * that fails later.
 */
import { readFile, stat } from 'node:fs/promises';
import { Etcd3, type IOptions } from 'etcd3';
import { invalid, SriovError } from '../host/errors.js';
import { campaign } from './etcd/election.js';
import { keys } from './etcd/keys.js';
import { EtcdStore } from './etcd/store.js';
import { parseEtcdUrl, type EtcdClientOptions, type EtcdTarget } from './etcd/url.js';
import { watchChanges } from './etcd/watch.js';
import { openSqliteStore } from './sqlite/index.js';
import type { Leadership, Store, StoreChange, WatchHooks } from './store.js';

export interface StoreOptions {
  /** `--store`: undefined for SQLite in `dataDir`. */
  url?: string;
  dataDir: string;
  /** `--etcd-cacert` ... `--etcd-password-file`. */
  etcd?: EtcdClientOptions;
  /** The election's lease TTL in seconds (default 5): how long a dead leader keeps leadership. */
  electionTtlS?: number;
  /** How long the first call to etcd may take before the start fails. Default 5 s. */
  connectTimeoutMs?: number;
  /** Errors the watch and the election recover from by themselves, for the log. */
  onError?: (err: Error) => void;
}

const CONNECT_TIMEOUT_MS = 5_000;
/** Resigning at close must not hold a shutdown up when etcd is gone (the lease then expires by itself). */
const RESIGN_TIMEOUT_MS = 2_000;
const PASSWORD_MAX = 4096;

export async function openStore(o: StoreOptions): Promise<Store> {
  if (o.url === undefined) {
    const given = Object.entries(o.etcd ?? {}).find(([, v]) => v !== undefined);
    if (given) throw invalid(`${flagOf(given[0])} is for an etcd store: add --store etcd://HOST:PORT[,...]`);
    return openSqliteStore(o.dataDir);
  }
  const target = parseEtcdUrl(o.url, o.etcd ?? {});
  return openEtcd(target, await clientOptions(target), o);
}

const FLAGS: Record<string, string> = { cacert: '--etcd-cacert', cert: '--etcd-cert', key: '--etcd-key', user: '--etcd-user', passwordFile: '--etcd-password-file' };
const flagOf = (option: string) => FLAGS[option] ?? option;

/** The etcd3 client's options: the files read (each refusal names its flag), before any connection. */
async function clientOptions(t: EtcdTarget): Promise<IOptions> {
  const options: IOptions = { hosts: t.endpoints, dialTimeout: CONNECT_TIMEOUT_MS };
  if (t.tls) {
    options.credentials = {
      rootCertificate: await readOptionFile('--etcd-cacert', t.tls.cacert),
      ...(t.tls.cert === undefined ? {} : { certChain: await readOptionFile('--etcd-cert', t.tls.cert) }),
      ...(t.tls.key === undefined ? {} : { privateKey: await readOptionFile('--etcd-key', t.tls.key, true) }),
    };
  }
  if (t.auth) options.auth = { username: t.auth.user, password: await readPassword(t.auth.passwordFile) };
  return options;
}

async function readOptionFile(flag: string, file: string, secret = false): Promise<Buffer> {
  const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw invalid(`${flag} ${file}: ${err.code === 'ENOENT' ? 'no such file' : (err.code ?? 'cannot read it')}`, file);
  });
  if (!info.isFile()) throw invalid(`${flag} ${file} is not a regular file`, file);
  if (secret && info.mode & 0o007) {
    throw invalid(`${flag} ${file} is open to others (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); run chmod 600 ${file}`, file);
  }
  return readFile(file);
}

async function readPassword(file: string): Promise<string> {
  const text = (await readOptionFile('--etcd-password-file', file, true)).toString('utf8').replace(/\r?\n$/, '');
  if (text === '' || text.length > PASSWORD_MAX || /[\r\n]/.test(text)) {
    throw invalid(`--etcd-password-file ${file} must hold the password on one line (1-${PASSWORD_MAX} characters)`, file);
  }
  return text;
}

/**
 * The etcd store with its watch and election, which it ends on close:
 * a campaign's lease, left behind, would keep renewing on a closed client
 * (and keep the process alive), and keep a standby waiting a whole TTL.
 */
class OpenedEtcdStore extends EtcdStore {
  private readonly watches = new Set<() => void>();
  private readonly leaderships = new Set<Leadership>();

  constructor(
    client: Etcd3,
    target: EtcdTarget,
    /** The revision the store was opened at: watches deliver what came after, so nothing read since is missed. */
    private readonly openedAt: number,
    private readonly o: StoreOptions,
  ) {
    super(client, keys(target.prefix), { endpoints: target.endpoints, onError: o.onError });
  }

  /** While a watch runs, it tells the catalogue cache of other controllers' changes (catalogue-cache.ts). */
  override watch(listener: (changes: StoreChange[]) => void, hooks: WatchHooks = {}): () => void {
    const heard = (changes: StoreChange[]) => {
      if (changes.some((c) => c.kind === 'catalogue' || c.kind === 'token')) this.catalogue.drop();
      listener(changes);
    };
    const onResync = () => {
      this.catalogue.drop();
      hooks.onResync?.();
    };
    const stop = watchChanges(this.client, this.keys, heard, { startRevision: this.openedAt + 1, onError: this.o.onError, onResync });
    const off = () => {
      this.watches.delete(off);
      if (this.watches.size === 0) this.catalogue.follow(false);
      stop();
    };
    this.watches.add(off);
    this.catalogue.follow(true);
    return off;
  }

  override async campaign(candidate: string): Promise<Leadership> {
    const l = campaign(this.client, this.keys, candidate, { ttlS: this.o.electionTtlS, onError: this.o.onError });
    this.leaderships.add(l);
    return l;
  }

  override async close(): Promise<void> {
    [...this.watches].forEach((off) => off());
    const resigned = Promise.allSettled([...this.leaderships].map((l) => l.resign()));
    await Promise.race([resigned, new Promise((r) => setTimeout(r, RESIGN_TIMEOUT_MS).unref())]);
    await super.close();
  }
}

async function openEtcd(t: EtcdTarget, options: IOptions, o: StoreOptions): Promise<Store> {
  const client = new Etcd3(options);
  const timeout = o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  try {
    // A linearizable read: it answers only with a quorum, and gives the revision the store opens at.
    const res = await client.kv.range({ key: Buffer.from(keys(t.prefix).auditSeq) }, { deadline: new Date(Date.now() + timeout) });
    return new OpenedEtcdStore(client, t, Number(res.header.revision), o);
  } catch (err) {
    client.close();
    const why = err instanceof Error ? err.message : String(err);
    if (/auth|permission|password|user/i.test(why)) {
      throw new SriovError('UNAUTHENTICATED', `etcd at ${t.endpoints.join(', ')} refused the client: ${why}; check --etcd-user and --etcd-password-file`, { object: t.endpoints.join(','), cause: err });
    }
    throw new SriovError('UNAVAILABLE', `etcd at ${t.endpoints.join(', ')} did not answer within ${timeout} ms (${why}); check --store and that etcd runs with a quorum`, {
      object: t.endpoints.join(','),
      nothingChanged: true,
      cause: err,
    });
  }
}
