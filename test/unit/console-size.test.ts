/**
 * The console's shipped JavaScript stays light (issue 13: at most 200 KB
 * gzipped), measured on what `npm run build:console` (run by `npm ci`) wrote.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';

const ASSETS = fileURLToPath(new URL('../../console/assets/', import.meta.url));
const BUDGET = 200 * 1024;

describe('console: build size', () => {
  it('ships at most 200 KB of JavaScript, gzipped', async () => {
    const files = await readdir(ASSETS).catch(() => {
      throw new Error(`no console build at ${ASSETS}: run npm run build:console (npm ci runs it)`);
    });
    const scripts = files.filter((f) => f.endsWith('.js'));
    assert.ok(scripts.length > 0, `no .js in ${ASSETS}`);
    let total = 0;
    for (const f of scripts) total += gzipSync(await readFile(ASSETS + f), { level: 9 }).length;
    assert.ok(total <= BUDGET, `the console ships ${(total / 1024).toFixed(1)} KB of gzipped JavaScript, over the ${BUDGET / 1024} KB budget`);
  });
});
