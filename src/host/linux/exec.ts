/**
 * Running host tools (ip, devlink). Always an argument vector, never a shell:
 * the values we pass come from users, and a shell would re-parse them.
 */
import { spawn } from 'node:child_process';
import { KernelError } from '../ports.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed (for `ip -batch -`). */
  input?: string;
  timeoutMs?: number;
}

/**
 * Resolves with the exit code and output; rejects when the command cannot be
 * started (the spawn error, e.g. `code: 'ENOENT'`) or runs past the timeout.
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // The child may exit before reading all of stdin (ip -batch stops at the
    // first failing line); its exit code reports that, the EPIPE adds nothing.
    child.stdin.on('error', () => {});
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new KernelError('ETIMEDOUT', cmd, `${cmd} ${args.join(' ')}: no answer within ${timeoutMs} ms`));
        return;
      }
      const stderr = Buffer.concat(err).toString('utf8');
      resolve({
        code: code ?? 128, // null only when a signal ended it
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: signal ? `${stderr}killed by ${signal}` : stderr,
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}
