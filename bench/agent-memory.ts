/**
 * The agent's memory alone, without the fleet: one SQLite controller, then a
 * real `sriovd agent` on a 4 x 256-VF host, this build's and (with
 * --baseline DIR/bin/sriovd.js) a baseline build's in the same run.
 *
 *   node dist/bench/agent-memory.js [--baseline /path/to/old/bin/sriovd.js]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { agentMemory } from './agent-rss.js';
import { startController } from './scale-procs.js';

const { values } = parseArgs({ options: { baseline: { type: 'string' } } });
const dir = await mkdtemp(join(tmpdir(), 'vfleet-agent-mem-'));
const controller = await startController(join(dir, 'c0'), []);
try {
  const token = (await readFile(join(dir, 'c0', 'admin.token'), 'utf8')).trim();
  await agentMemory(dir, controller.url, token, values.baseline);
} finally {
  await controller.stop();
  await rm(dir, { recursive: true, force: true });
}
