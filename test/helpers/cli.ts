/** Runs the real `sriovctl` entry point in a child process, as a user would. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SRIOVCTL = fileURLToPath(new URL('../../../bin/sriovctl.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function sriovctl(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runProcess(process.execPath, [SRIOVCTL, ...args], { env: { ...process.env, ...env } });
}

/** Runs a command to its end, collecting what it prints. */
export function runProcess(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * `sriovctl` against a controller, as admin (the bootstrap token file) unless
 * `extraEnv` swaps in another SRIOV_TOKEN. `target` is read at each call, so
 * a suite can fill it in its `before`.
 */
export function remoteCli(target: () => { env: NodeJS.ProcessEnv; adminTokenFile: string }) {
  const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<CliResult> => {
    const { env, adminTokenFile } = target();
    const auth = extraEnv.SRIOV_TOKEN ? [] : ['--token-file', adminTokenFile];
    return sriovctl([...auth, ...args], { ...env, ...extraEnv });
  };
  const ok = async (args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<string> => {
    const r = await cli(args, extraEnv);
    assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const json = async <T>(args: string[], extraEnv?: NodeJS.ProcessEnv): Promise<T> => JSON.parse(await ok([...args, '-o', 'json'], extraEnv)) as T;
  /** Exits `code`, says `stderr`, and never with a stack trace. */
  const fails = async (args: string[], code: number, stderr: RegExp, extraEnv?: NodeJS.ProcessEnv): Promise<string> => {
    const r = await cli(args, extraEnv);
    assert.equal(r.code, code, `sriovctl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    return r.stderr;
  };
  return { cli, ok, json, fails };
}
