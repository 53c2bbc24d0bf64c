// The async mutex the controller's decisions run under: callers one at a time,
// in arrival order; `now` runs a caller at once only while nobody runs or waits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Mutex } from '../../src/util/mutex.js';

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('Mutex', () => {
  it('runs callers one at a time, in arrival order, past a caller that failed', async () => {
    const mutex = new Mutex();
    const order: string[] = [];
    const first = gate();
    const a = mutex.run(async () => {
      order.push('a starts');
      await first.opened;
      order.push('a ends');
      throw new Error('a failed');
    });
    const b = mutex.run(() => {
      order.push('b');
      return 'b done';
    });
    await Promise.resolve();
    first.open();
    await assert.rejects(a, /a failed/);
    assert.equal(await b, 'b done');
    assert.deepEqual(order, ['a starts', 'a ends', 'b']);
  });

  it('now: runs at once while free, and returns what the caller returns as it is', () => {
    const mutex = new Mutex();
    assert.equal(mutex.now(() => 7), 7);
    const refuse = (): number => {
      throw new Error('refused');
    };
    assert.throws(() => mutex.now(refuse), /refused/);
    // A throw does not leave the mutex held.
    assert.equal(mutex.now(() => 8), 8);
  });

  it('now: waits behind a caller that runs, and holds the mutex while its own promise is pending', async () => {
    const mutex = new Mutex();
    const order: string[] = [];
    const first = gate();
    const a = mutex.run(async () => {
      await first.opened;
      order.push('a');
    });
    const b = mutex.now(() => {
      order.push('b');
      return 'b done';
    });
    assert.ok(b instanceof Promise, 'a caller behind another waits');
    first.open();
    await a;
    assert.equal(await b, 'b done');

    const second = gate();
    const c = mutex.now(async () => {
      await second.opened;
      order.push('c');
    });
    const d = mutex.run(() => order.push('d'));
    await Promise.resolve();
    assert.deepEqual(order, ['a', 'b'], 'd waits for c');
    second.open();
    await Promise.all([c, d]);
    assert.deepEqual(order, ['a', 'b', 'c', 'd']);
  });
});
