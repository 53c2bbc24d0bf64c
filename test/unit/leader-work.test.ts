// Background work runs on the leader only: it starts (migrations resumed
// first) when this controller gains leadership, and stops when it loses it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlPlane } from '../../src/controller/control-plane.js';
import { LeaderWork } from '../../src/controller/leader-work.js';
import type { Leadership } from '../../src/store/store.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { inventoryOf } from '../helpers/api-harness.js';

const AGENT = { id: 'local', role: 'agent:h1' } as const;
const ADMIN = { id: 'test', role: 'admin' } as const;
const SWEEP_MS = 5;

/** A leadership the test hands over and takes back. */
class FakeLeadership implements Leadership {
  leader = false;
  resigned = false;
  private readonly listeners = new Set<(leader: boolean) => void>();
  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(leader: boolean): void {
    this.leader = leader;
    for (const l of this.listeners) l(leader);
  }
  async resign(): Promise<void> {
    this.resigned = true;
    this.set(false);
  }
}

/** Tasks that count their calls, and say when the next sweep came. */
function countingTasks() {
  const calls = { resume: 0, sweep: 0 };
  let swept: () => void = () => {};
  return {
    calls,
    nextSweep: () => new Promise<void>((resolve) => (swept = resolve)),
    tasks: {
      resume: async () => void calls.resume++,
      sweep: async () => {
        calls.sweep++;
        swept();
      },
    },
  };
}

describe('leader-only background work', () => {
  it('runs nothing on a standby, resumes then sweeps on gaining leadership, and stops on losing it', async () => {
    const leadership = new FakeLeadership();
    const { calls, tasks, nextSweep } = countingTasks();
    const changes: boolean[] = [];
    const work = new LeaderWork(leadership, tasks, { sweepMs: SWEEP_MS, onError: assert.fail, onChange: (l) => changes.push(l) }).start();
    await sleep(SWEEP_MS * 10);
    assert.equal(work.active, false);
    assert.deepEqual(calls, { resume: 0, sweep: 0 }, 'a standby sweeps nothing');

    const swept = nextSweep();
    leadership.set(true);
    assert.equal(work.active, true);
    await swept;
    assert.equal(calls.resume, 1, 'migrations resumed once, before the first sweep');

    leadership.set(false);
    await work.settled();
    const after = calls.sweep;
    await sleep(SWEEP_MS * 10);
    assert.equal(work.active, false);
    assert.equal(calls.sweep, after, 'no sweep once leadership is lost');

    // A new term resumes again: the leader in between may have left migrations halfway.
    const again = nextSweep();
    leadership.set(true);
    await again;
    assert.equal(calls.resume, 2);
    await work.stop();
    assert.equal(work.active, false);
    assert.deepEqual(changes, [true, false, true]);
  });

  it('says what a failed sweep threw, and sweeps on', async () => {
    const leadership = new FakeLeadership();
    leadership.leader = true;
    const errors: unknown[] = [];
    let n = 0;
    let second: () => void = () => {};
    const done = new Promise<void>((resolve) => (second = resolve));
    const tasks = {
      resume: async () => {},
      sweep: async () => {
        if (++n === 1) throw new Error('store unavailable');
        second();
      },
    };
    const work = new LeaderWork(leadership, tasks, { sweepMs: SWEEP_MS, onError: (e) => errors.push(e) }).start();
    await done;
    await work.stop();
    assert.deepEqual(errors.map((e) => (e as Error).message), ['store unavailable']);
  });

  it('marks a silent host unreachable only on the leader (ControlPlane.lead)', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-leader-'));
    try {
      const store = await openSqliteStore(dir);
      const control = await ControlPlane.open(store, { heartbeatTimeoutMs: 1, resume: false });
      await control.hosts.report(AGENT, inventoryOf('h1'));
      const leadership = new FakeLeadership();
      const work = control.lead(leadership, { sweepMs: SWEEP_MS, onError: assert.fail });
      await sleep(SWEEP_MS * 10);
      assert.equal((await control.hosts.get(ADMIN, 'h1')).state, 'ready', 'a standby does not sweep');
      leadership.set(true);
      while ((await control.hosts.get(ADMIN, 'h1')).state === 'ready') await sleep(SWEEP_MS);
      assert.equal((await control.hosts.get(ADMIN, 'h1')).state, 'unreachable');
      await work.stop();
      control.shutdown();
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
