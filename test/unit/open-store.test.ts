// openStore: SQLite by default; an etcd URL or option that is wrong is refused before anything connects,
// and an etcd that does not answer is an error naming its endpoints.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { openStore } from '../../src/store/open.js';

function code(c: string, re: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SriovError, String(err));
    assert.equal(err.code, c);
    assert.match(err.message, re);
    return true;
  };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('openStore', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-open-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('opens SQLite in the data dir without --store', async () => {
    const store = await openStore({ dataDir: join(dir, 'data') });
    assert.equal(store.kind, 'sqlite');
    await store.close();
  });

  it('refuses etcd options without an etcd store, and a bad URL, creating nothing', async () => {
    const dataDir = join(dir, 'never');
    await assert.rejects(openStore({ dataDir, etcd: { cacert: '/ca.crt' } }), code('INVALID_ARGUMENT', /--etcd-cacert is for an etcd store: add --store etcd:\/\//));
    await assert.rejects(openStore({ dataDir, url: 'etcd://h1:99999' }), code('INVALID_ARGUMENT', /bad port "99999"/));
    await assert.rejects(openStore({ dataDir, url: 'postgres://h1' }), code('INVALID_ARGUMENT', /scheme "postgres" is not supported/));
    assert.deepEqual((await readdir(dir)).filter((f) => f === 'never'), []);
  });

  it('refuses a missing CA file and a password file open to others, naming the flag', async () => {
    await assert.rejects(openStore({ dataDir: dir, url: 'etcd://127.0.0.1:2379', etcd: { cacert: join(dir, 'nope.crt') } }), code('INVALID_ARGUMENT', /--etcd-cacert .*nope.crt: no such file/));
    const pw = join(dir, 'pw');
    await writeFile(pw, 'secret\n');
    await chmod(pw, 0o644);
    await assert.rejects(openStore({ dataDir: dir, url: 'etcd://127.0.0.1:2379', etcd: { user: 'vfleet', passwordFile: pw } }), code('INVALID_ARGUMENT', /--etcd-password-file .* is open to others \(mode 0644\); run chmod 600/));
  });

  it('names the endpoints when etcd does not answer at start', async () => {
    const [p1, p2] = [await closedPort(), await closedPort()];
    await assert.rejects(
      openStore({ dataDir: dir, url: `etcd://127.0.0.1:${p1},127.0.0.1:${p2}`, connectTimeoutMs: 1_000 }),
      code('UNAVAILABLE', new RegExp(`etcd at http://127.0.0.1:${p1}, http://127.0.0.1:${p2} did not answer within 1000 ms .*check --store and that etcd runs`)),
    );
  });
});
