/**
 * The store's options on `sriovd` (`--store` and the etcd client's TLS and
 * auth files) and `sriovd store export|import`, which move a deployment's
 * content between stores (SQLite onto etcd) as one JSON file.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command } from 'commander';
import { invalid } from '../host/errors.js';
import { parseInteger } from '../host/validate.js';
import { parseEtcdUrl } from '../store/etcd/url.js';
import type { StoreOptions } from '../store/open.js';
import type { Store } from '../store/store.js';
import type { TransferCounts } from '../store/transfer.js';

export interface StoreCliOptions {
  dataDir: string;
  store?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdUser?: string;
  etcdPasswordFile?: string;
  electionTtl?: string;
}

/** Adds `--store` and the etcd options to `command`. */
export function withStoreOptions(command: Command): Command {
  return command
    .option('--store <URL>', 'the store: etcd://HOST:PORT[,HOST:PORT...][/PREFIX] for several controllers (default: SQLite in --data-dir)')
    .option('--etcd-cacert <FILE>', "the CA of the etcd servers' certificates (connects with TLS)")
    .option('--etcd-cert <FILE>', "this client's certificate, when etcd asks for one (with --etcd-key)")
    .option('--etcd-key <FILE>', "the private key of --etcd-cert (not open to others)")
    .option('--etcd-user <NAME>', 'etcd user (with --etcd-password-file)')
    .option('--etcd-password-file <FILE>', "the etcd user's password, on one line (not open to others)")
    .option('--election-ttl <S>', "seconds a dead leader keeps leadership before a standby takes over (etcd's lease)", '5');
}

/** The options `openStore` takes, from the command line; a bad URL is refused here, before anything is created. */
export function storeOptionsOf(o: StoreCliOptions, onError?: (err: Error) => void): StoreOptions {
  const etcd = { cacert: o.etcdCacert, cert: o.etcdCert, key: o.etcdKey, user: o.etcdUser, passwordFile: o.etcdPasswordFile };
  if (o.store !== undefined) parseEtcdUrl(o.store, etcd);
  return {
    url: o.store,
    dataDir: resolve(o.dataDir),
    etcd,
    electionTtlS: o.electionTtl === undefined ? undefined : parseInteger(o.electionTtl, '--election-ttl', 1, 300),
    onError,
  };
}

const summary = (c: TransferCounts) => Object.entries(c).map(([k, n]) => `${n} ${k}`).join(', ');

/** The stores (and the etcd client) are loaded only by the commands that open one: `sriovd agent` never does. */
async function withStore<T>(o: StoreCliOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  const { openStore } = await import('../store/open.js');
  const store = await openStore(storeOptionsOf(o));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function runExport(o: StoreCliOptions & { out?: string }): Promise<void> {
  const { countsOf, exportStore } = await import('../store/transfer.js');
  const dump = await withStore(o, (store) => exportStore(store));
  const text = `${JSON.stringify(dump, null, 1)}\n`;
  // It holds every token's hash and every tenant's records: for the operator only.
  if (o.out === undefined) process.stdout.write(text);
  else await writeFile(o.out, text, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    throw invalid(`--out ${o.out}: ${err.code === 'EEXIST' ? 'the file exists; give a new name' : (err.code ?? err.message)}`, o.out);
  });
  process.stderr.write(`sriovd: exported ${summary(countsOf(dump))} from the ${dump.source} store\n`);
}

async function runImport(file: string, o: StoreCliOptions): Promise<void> {
  const { importStore, parseDump } = await import('../store/transfer.js');
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw invalid(`${file}: ${err.code === 'ENOENT' ? 'no such file' : (err.code ?? err.message)}`, file);
  });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(`${file} is not JSON: ${(err as Error).message}`, file);
  }
  const dump = parseDump(value, file);
  const counts = await withStore(o, (store) => importStore(store, dump));
  process.stderr.write(`sriovd: imported ${summary(counts)}\n`);
}

/** `sriovd store export|import`. */
export function storeCommand(): Command {
  const store = new Command('store').description("move a deployment's store to another (SQLite onto etcd): export it as JSON, import it into an empty store");
  withStoreOptions(store.command('export'))
    .description('write the whole store as JSON (to stdout, or a new file with --out)')
    .option('--data-dir <DIR>', 'the SQLite store lives here (without --store)', './data')
    .option('--out <FILE>', 'write to this new file (mode 0600) instead of stdout')
    .action((o: StoreCliOptions & { out?: string }) => runExport(o));
  withStoreOptions(store.command('import'))
    .description('write an export into an empty store (before any controller starts on it)')
    .argument('<FILE>', 'the export')
    .option('--data-dir <DIR>', 'the SQLite store lives here (without --store)', './data')
    .action((file: string, o: StoreCliOptions) => runImport(file, o));
  return store;
}
