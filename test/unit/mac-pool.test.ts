import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { DEFAULT_MAC_PREFIX, MacPool, parsePrefix } from '../../src/domain/mac-pool.js';

const code = (c: string) => (e: unknown) => e instanceof SriovError && e.code === c;

describe('MacPool', () => {
  it('counts up from the default prefix, deterministically', () => {
    const take = (pool: MacPool) => [pool.next(), pool.next(), pool.next()];
    assert.equal(DEFAULT_MAC_PREFIX, '02:5f:00');
    assert.deepEqual(take(new MacPool()), ['02:5f:00:00:00:00', '02:5f:00:00:00:01', '02:5f:00:00:00:02']);
    assert.deepEqual(take(new MacPool()), take(new MacPool()));
  });

  it('skips MACs in use and does not hand the same MAC out twice in flight', () => {
    const pool = new MacPool();
    pool.markUsed('02:5F:00:00:00:00');
    pool.markUsed('02-5f-00-00-00-02');
    assert.equal(pool.next(), '02:5f:00:00:00:01');
    assert.equal(pool.next(), '02:5f:00:00:00:03');
  });

  it('uses the counter space a prefix leaves, and wraps around', () => {
    const pool = new MacPool({ prefix: '06:00:00:00:01' });
    assert.equal(pool.prefix, '06:00:00:00:01');
    const all = Array.from({ length: 256 }, () => pool.next());
    assert.equal(new Set(all).size, 256);
    assert.equal(all[255], '06:00:00:00:01:ff');
    all.forEach((mac) => pool.markUsed(mac));
    assert.throws(() => pool.next(), code('NO_CAPACITY'));
    assert.equal(pool.release('06:00:00:00:01:80'), true);
    assert.equal(pool.next(), '06:00:00:00:01:80');
  });

  it('covers a 40-bit space with a one-octet prefix', () => {
    const pool = new MacPool({ prefix: '0a' });
    pool.markUsed('0a:00:00:00:00:00');
    assert.equal(pool.next(), '0a:00:00:00:00:01');
  });

  it('keeps the in-use set in step with markUsed and release', () => {
    const pool = new MacPool();
    pool.markUsed('02:00:00:00:00:aa');
    assert.equal(pool.isUsed('02:00:00:00:00:AA'), true);
    assert.equal(pool.release('02:00:00:00:00:aa'), true);
    assert.equal(pool.release('02:00:00:00:00:aa'), false);
    assert.equal(pool.isUsed('02:00:00:00:00:aa'), false);
  });

  it('tells MACs apart by every octet, to the top of the 48-bit space', () => {
    const pool = new MacPool();
    pool.markUsed('06:5f:00:00:00:00');
    pool.markUsed('02:5f:01:00:00:01');
    assert.equal(pool.next(), '02:5f:00:00:00:00', 'the same counter under another prefix is another MAC');
    assert.equal(pool.next(), '02:5f:00:00:00:01');
    pool.markUsed('fe:ff:ff:ff:ff:fe');
    assert.equal(pool.isUsed('FE:FF:FF:FF:FF:FE'), true);
    assert.equal(pool.isUsed('fe:ff:ff:ff:ff:fc'), false);
    assert.equal(pool.isUsed('7e:ff:ff:ff:ff:fe'), false);
  });

  it('checkRequested validates, normalizes and refuses a MAC in use with CONFLICT', () => {
    const pool = new MacPool();
    assert.equal(pool.checkRequested('52:54:00:AB:CD:EF'), '52:54:00:ab:cd:ef');
    pool.markUsed('52:54:00:ab:cd:ef');
    assert.throws(() => pool.checkRequested('52-54-00-ab-cd-ef'), code('CONFLICT'));
    assert.throws(() => pool.checkRequested('01:00:5e:00:00:01'), code('INVALID_ARGUMENT'));
    assert.throws(() => pool.checkRequested('00:00:00:00:00:00'), code('INVALID_ARGUMENT'));
    assert.throws(() => pool.checkRequested('nonsense'), code('INVALID_ARGUMENT'));
    // The multicast bit, in canonical form and not: the first octet's lowest bit, whatever its high digit.
    assert.throws(() => pool.checkRequested('0b:00:00:00:00:01'), /multicast/);
    assert.throws(() => pool.checkRequested('FB-00-00-00-00-01'), /multicast/);
    assert.equal(pool.checkRequested('FA-00-00-00-00-01'), 'fa:00:00:00:00:01');
  });
});

describe('parsePrefix', () => {
  it('accepts 1 to 5 locally administered unicast octets', () => {
    assert.equal(parsePrefix('02'), '02');
    assert.equal(parsePrefix(' 0E-AB-CD '), '0e:ab:cd');
    assert.equal(parsePrefix('fe:00:00:00:00'), 'fe:00:00:00:00');
  });

  it('refuses malformed, too long, globally administered and multicast prefixes', () => {
    for (const bad of ['', '2:5f', '02:5f:00:00:00:00', '02:5g', '00:50:56', '03:00:00', 'ff']) {
      assert.throws(() => new MacPool({ prefix: bad }), code('INVALID_ARGUMENT'), bad);
    }
    assert.throws(() => parsePrefix('00:50:56'), /not locally administered/);
    assert.throws(() => parsePrefix('03'), /multicast/);
  });
});
