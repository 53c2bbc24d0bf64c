/**
 * The processes of the scale bench: real `sriovd` controllers and agents,
 * each its own process so that its RSS is its own, and a small HTTP client
 * that counts what each call cost (ms, bytes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** This build's `sriovd`; a bench may run another build's (a baseline checkout's bin/sriovd.js) beside it. */
export const SRIOVD = fileURLToPath(new URL('../../bin/sriovd.js', import.meta.url));

export interface Proc {
  proc: ChildProcess;
  /** The controller's API (controllers only). */
  url: string;
  /** From spawn to ready, in ms. */
  readyMs: number;
  tail: () => string;
  stop(): Promise<void>;
}

/** Spawns `sriovd ARGS` and resolves when its log matches `ready` (whose group 1, if any, is the URL). */
export function spawnSriovd(args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}, bin = SRIOVD): Promise<Proc> {
  const started = performance.now();
  const proc = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  // The last few KB only: a controller logs a line per change, and a bench makes hundreds of thousands.
  let output = '';
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let seen = false;
    const timer = setTimeout(() => void stop().then(() => reject(new Error(`sriovd ${args[0]} did not start:\n${output}`))), 120_000);
    const onData = (d: Buffer) => {
      output = (output + d).slice(-8192);
      const m = seen ? null : ready.exec(output);
      if (!m) return;
      seen = true;
      clearTimeout(timer);
      resolve({ proc, url: m[1] ?? '', readyMs: performance.now() - started, tail: () => output, stop });
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      if (!seen) reject(new Error(`sriovd exited with ${code}:\n${output}`));
    });
  });
}

export function startController(dataDir: string, extra: string[], bin = SRIOVD): Promise<Proc> {
  return spawnSriovd(['--no-agent', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...extra], /API and console on (\S+?);/, {}, bin);
}

/** Resident set and its peak, in bytes, from /proc. */
export async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

export interface Call<T = unknown> {
  status: number;
  body: T;
  bytes: number;
  ms: number;
  next: string | null;
}

/**
 * Keep-alive sockets to the controllers. node:http, not fetch: the clients
 * share the machine with what they measure, and fetch's streams cost this
 * process about twice the CPU per call (bench/http-client.ts).
 */
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/** One API call; `next` is the path of the `Link: rel="next"` page, if any. */
export function call<T = unknown>(base: string, token: string, method: string, path: string, body?: unknown): Promise<Call<T>> {
  const t0 = performance.now();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string | number> = { authorization: `Bearer ${token}` };
  if (payload !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  return new Promise((resolve, reject) => {
    const req = request(base + path, { method, headers, agent, timeout: 300_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const link = /<([^>]+)>;\s*rel="next"/.exec(String(res.headers.link ?? ''))?.[1] ?? null;
        const next = link === null ? null : link.startsWith('http') ? new URL(link).pathname + new URL(link).search : link;
        resolve({ status: res.statusCode!, body: (text ? JSON.parse(text) : null) as T, bytes: Buffer.byteLength(text), ms: performance.now() - t0, next });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 300 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** `call`, refusing anything but a 2xx with the controller's message. */
export async function ok<T = unknown>(base: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await call<T>(base, token, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
  return r.body;
}

/** CPU time (user + system) the process has used so far, in ms: to tell a starved controller from a slow one. */
export async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/**
 * Bytes the process has sent to storage so far (`write_bytes` in
 * /proc/PID/io: counted as it dirties page-cache pages of a file on a disk,
 * so 4 KB granular; its sockets, pipes and tmpfs files count nothing). For a
 * SQLite controller with its data dir on disk: its WAL and checkpoints.
 */
export async function writtenOf(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  return Number(/^write_bytes:\s+(\d+)$/m.exec(io)?.[1] ?? NaN);
}
