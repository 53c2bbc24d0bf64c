/**
 * A fresh controller's memory as it builds its index from a SQLite store of
 * N hosts x 4 PFs x 64 VFs: RSS before and when ready, its peak, and the
 * time, in a process of its own per build, this build's and (with --baseline
 * OLD_CHECKOUT, which has dist/ built) a baseline build's on the same store.
 *
 *   node dist/bench/controller-open.js [--hosts 1000] [--baseline /path/to/old/checkout]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { makeHost } from '../test/helpers/inventory.js';

interface Opened {
  openMs: number;
  rssBefore: number;
  rssReady: number;
  peak: number;
}

const THIS_BUILD = fileURLToPath(new URL('../..', import.meta.url));

/** Run in the child: open the store as `sriovd` does at start (ControlPlane.open), then report memory. */
const CHILD = `
const [root, dir] = process.argv.slice(1);
const { openSqliteStore } = await import(root + '/dist/src/store/sqlite/index.js');
const { ControlPlane } = await import(root + '/dist/src/controller/control-plane.js');
const { readFileSync } = await import('node:fs');
const store = await openSqliteStore(dir);
const rssBefore = process.memoryUsage().rss;
const t0 = performance.now();
await ControlPlane.open(store, { resume: false });
const openMs = performance.now() - t0;
const peak = Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
process.stdout.write(JSON.stringify({ openMs, rssBefore, rssReady: process.memoryUsage().rss, peak }));
process.exit(0);
`;

async function fill(dir: string, hosts: number): Promise<void> {
  const store = await openSqliteStore(dir);
  for (let i = 0; i < hosts; i++) {
    const h = makeHost({ name: `scale-${i}`, pfs: 4, vfs: 64, driver: 'ice', linkSpeedMbps: 100_000 });
    await store.transaction((tx) => tx.putHost(h));
  }
  await store.close();
}

function open(root: string, dir: string): Opened {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, root, dir], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`controller open (${root}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Opened;
}

const MB = 2 ** 20;
const line = (o: Opened) => `ready in ${o.openMs.toFixed(0)} ms; RSS ${(o.rssBefore / MB).toFixed(1)} MB before, ${(o.rssReady / MB).toFixed(1)} MB ready (peak ${(o.peak / MB).toFixed(1)} MB)`;

const { values } = parseArgs({ options: { hosts: { type: 'string', default: '1000' }, baseline: { type: 'string' } } });
const hosts = Number(values.hosts);
const dir = await mkdtemp(join(tmpdir(), 'vfleet-open-'));
try {
  await fill(dir, hosts);
  console.log(`controller open: ${hosts} hosts x 4 PFs x 64 VFs = ${hosts * 256} VFs in SQLite`);
  const before = values.baseline ? open(values.baseline, dir) : null;
  const now = open(THIS_BUILD, dir);
  console.log(`  this build: ${line(now)}`);
  if (before) console.log(`  baseline (${values.baseline}): ${line(before)}; this build ${(now.rssReady / before.rssReady).toFixed(2)}x the RSS, ${(now.peak / before.peak).toFixed(2)}x the peak, ${(now.openMs / before.openMs).toFixed(2)}x the time`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
