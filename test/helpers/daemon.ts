/** Starts real `sriovd` processes on loopback for end-to-end tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const SRIOVD = fileURLToPath(new URL('../../../bin/sriovd.js', import.meta.url));

export interface Daemon {
  proc: ChildProcess;
  /** Base URL of the API, for a controller. */
  url: string;
  log: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns `sriovd ARGS` (in `cwd`, for relative paths) and resolves once its log shows `ready` (a regexp over the log). */
export function startDaemon(args: string[], ready = /API and console on (\S+?);|reporting to/, cwd?: string): Promise<Daemon> {
  const proc = spawn(process.execPath, [SRIOVD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd });
  let output = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const kill = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return new Promise((resolve, reject) => {
    // A daemon that never gets ready is killed, or its open pipes would keep the test process alive.
    // 60 s: in the lab guest (software-emulated CPU) node starts ~10x slower than here.
    const timer = setTimeout(() => void kill('SIGKILL').then(() => reject(new Error(`sriovd did not start:\n${output}`))), 60_000);
    const onData = (d: Buffer) => {
      output += d;
      const m = ready.exec(output);
      if (!m) return;
      clearTimeout(timer);
      resolve({ proc, url: m[1] ?? '', log: () => output, kill });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sriovd exited with ${code}:\n${output}`));
    });
  });
}

export interface ApiResult<T = unknown> {
  status: number;
  body: T;
}

export async function api<T = unknown>(url: string, token: string, method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `ms`. */
export async function eventually<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
