// Heartbeats: a silent host is marked unreachable once, comes back on its next
// report, and a restarted controller gives every host a fresh grace period.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { HostInventory } from '../../src/host/model.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

const TIMEOUT = 30_000;
const AGENT = { id: 'local', role: 'agent:h1' } as const;
const ADMIN = { id: 'test', role: 'admin' } as const;
const INVENTORY: HostInventory = { hostname: 'h1', pfs: [] };

describe('host liveness', () => {
  let dir: string;
  after(() => rm(dir, { recursive: true, force: true }));

  it('marks a silent host unreachable once, and ready again when it reports', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-liveness-'));
    const store = await openSqliteStore(dir);
    const control = await ControlPlane.open(store, { heartbeatTimeoutMs: TIMEOUT });
    await control.hosts.report(AGENT, INVENTORY);
    const now = Date.now();
    assert.deepEqual(await control.hosts.sweep(now + TIMEOUT - 1_000), [], 'within the timeout');
    assert.deepEqual(await control.hosts.sweep(now + TIMEOUT + 1_000), ['h1']);
    assert.equal((await control.hosts.get(ADMIN, 'h1')).state, 'unreachable');
    assert.deepEqual(await control.hosts.sweep(now + TIMEOUT + 5_000), [], 'not marked twice');
    const unreachable = (await control.events(ADMIN)).filter((e) => e.action === 'host.unreachable');
    assert.equal(unreachable.length, 1);

    await control.hosts.report(AGENT, INVENTORY);
    assert.equal((await control.hosts.get(ADMIN, 'h1')).state, 'ready');
    await store.close();

    // A restarted controller: the host had reported just now, so a sweep right away finds it alive.
    const reopened = await openSqliteStore(dir);
    const restarted = await ControlPlane.open(reopened, { heartbeatTimeoutMs: TIMEOUT });
    assert.deepEqual(await restarted.hosts.sweep(Date.now() + TIMEOUT - 1_000), []);
    assert.deepEqual(await restarted.hosts.sweep(Date.now() + TIMEOUT + 1_000), ['h1'], 'then times out as usual');
    await reopened.close();
  });
});
