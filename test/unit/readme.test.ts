/**
 * The README is executable: every ```bash block of README.md runs here, each
 * command as its own test, in order, in a fresh directory, so the README
 * cannot drift from the code. The only substitutions, all explicit:
 *
 * 1. A block with a `# not run by the README test: REASON` line is not run
 *    (lab, root, installing packages); the reason is required.
 * 2. `npx sriovctl` runs this checkout's bin/sriovctl.js, which is what npx
 *    finds in the repository, without needing npm or the registry here.
 * 3. `npm start [-- ARGS]` starts bin/sriovd.js ARGS in the background,
 *    listening on a free port of 127.0.0.1; it is stopped at the end.
 * 4. `127.0.0.1:7474` (the default address) becomes that daemon's address.
 * 5. `<id>` becomes the `id` in the JSON printed by the latest command run
 *    with `-o json` (which must have printed one).
 * 6. A command must exit 0, or N where its comment says `exits N`.
 *
 * Each command runs with bash after the `export` lines run so far; HOME is
 * the fresh directory and SRIOV_* variables are cleared, so nothing of the
 * user's configuration leaks in.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { runProcess, SRIOVCTL, type CliResult as Run } from '../helpers/cli.js';
import { startDaemon, type Daemon } from '../helpers/daemon.js';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));
const SKIP_MARKER = /^#\s*not run by the README test:\s*(.*)$/;
const DEFAULT_ADDRESS = '127.0.0.1:7474';

interface Command {
  /** Line number in README.md, for the test's name and messages. */
  line: number;
  text: string;
}

interface Block {
  line: number;
  commands: Command[];
  /** Why the block is not run; null: it is run. */
  skip: string | null;
}

/** The ```bash blocks of a markdown text. */
export function bashBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```bash') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    const body = lines.slice(start, end);
    const marker = body.map((l) => SKIP_MARKER.exec(l.trim())).find(Boolean);
    blocks.push({ line: start, commands: splitCommands(body, start + 1), skip: marker ? marker[1]!.trim() : null });
    i = end;
  }
  return blocks;
}

/** One command per line, joining `\` continuations and here-documents; comment lines are not commands. */
function splitCommands(body: string[], firstLine: number): Command[] {
  const commands: Command[] = [];
  for (let i = 0; i < body.length; i++) {
    const line = firstLine + i;
    let text = body[i]!;
    if (text.trim() === '' || text.trim().startsWith('#')) continue;
    while (text.endsWith('\\') && i + 1 < body.length) text += '\n' + body[++i];
    const heredoc = /<<-?\s*'?([A-Za-z_]+)'?/.exec(text);
    if (heredoc) {
      while (i + 1 < body.length && body[i]!.trim() !== heredoc[1]) text += '\n' + body[++i];
    }
    commands.push({ line, text });
  }
  return commands;
}

/** Rule 6: the exit status the command's comment announces. */
const expectedExit = (text: string) => Number(/#.*\bexits (\d+)\b/.exec(text)?.[1] ?? 0);

/** Rule 3: `npm start -- ARGS` → ARGS (comments dropped). */
function daemonArgs(text: string): string[] | null {
  const m = /^npm start(?:\s+--)?(.*)$/.exec(text.replace(/\s+#.*$/, '').trim());
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : null;
}


function bash(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return runProcess('bash', ['-c', script], { cwd, env });
}

/** Rule 5: the `id` of a command's JSON output, if it printed an object with one. */
function idIn(stdout: string): string | null {
  try {
    const id = (JSON.parse(stdout) as { id?: unknown } | null)?.id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

const blocks = bashBlocks(readFileSync(README, 'utf8'));

describe('README.md, pasted in order', { timeout: 300_000 }, () => {
  let work: string;
  let env: NodeJS.ProcessEnv;
  let daemon: Daemon | null = null;
  let address = DEFAULT_ADDRESS;
  const exports: string[] = [];
  let lastId: string | null = null;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'vfleet-readme-'));
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SRIOV_')));
    env.HOME = work;
  });

  after(async () => {
    await daemon?.kill();
    await rm(work, { recursive: true, force: true });
  });

  it('runs its bash blocks, and says why for each one it does not', () => {
    assert.ok(blocks.some((b) => b.skip === null && b.commands.length > 0), 'no bash block is run');
    for (const b of blocks.filter((x) => x.skip !== null)) assert.notEqual(b.skip, '', `README.md:${b.line}: a block not run must say why`);
    assert.ok(blocks.some((b) => b.skip === null && b.commands.some((c) => daemonArgs(c.text))), 'no block starts the daemon that the remote tour talks to');
  });

  for (const block of blocks.filter((b) => b.skip === null)) {
    for (const command of block.commands) {
      it(`README.md:${command.line}: ${command.text.split('\n')[0]!.slice(0, 110)}`, async () => {
        const args = daemonArgs(command.text);
        if (args) {
          assert.equal(daemon, null, 'the README starts a second daemon');
          daemon = await startDaemon([...args, '--listen', '127.0.0.1:0'], undefined, work);
          address = new URL(daemon.url).host;
          return;
        }
        let text = command.text.replaceAll('npx sriovctl', `"${process.execPath}" "${SRIOVCTL}"`).replaceAll(DEFAULT_ADDRESS, address);
        if (text.includes('<id>')) {
          assert.ok(lastId, '<id>: the latest command run with -o json printed no id');
          text = text.replaceAll('<id>', lastId);
        }
        const run = await bash([...exports, text].join('\n'), work, env);
        if (/\s-o json\b/.test(text)) lastId = idIn(run.stdout);
        if (/^export\s/.test(text)) exports.push(text);
        const want = expectedExit(command.text);
        assert.equal(run.code, want, `exit ${run.code}, the README expects ${want}\n--- stdout\n${run.stdout.slice(0, 2000)}\n--- stderr\n${run.stderr.slice(0, 2000)}`);
      });
    }
  }
});
