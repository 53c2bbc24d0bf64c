/**
 * A QEMU Machine Protocol client over a unix socket (QEMU's
 * docs/interop/qmp-spec.rst): QEMU greets with `{"QMP": {...}}`, the client
 * leaves capabilities negotiation with `qmp_capabilities`, then sends
 * `{"execute", "arguments", "id"}` and gets `{"return"}` or `{"error":
 * {"class", "desc"}}` with the same id; events (`{"event", "data",
 * "timestamp"}`) may come between them at any time.
 *
 * QEMU serves one client per monitor socket: a second one is accepted but
 * gets no greeting until the first leaves, so the greeting has a timeout
 * that says so.
 */
import { connect, type Socket } from 'node:net';
import { SriovError } from '../host/errors.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** QEMU's refusal of a command: its error class (`GenericError`, `DeviceNotFound`, ...) and text. */
export class QmpError extends Error {
  constructor(
    readonly errorClass: string,
    readonly desc: string,
    readonly command: string,
  ) {
    super(`${command}: ${desc} (${errorClass})`);
    this.name = 'QmpError';
  }
}

/** The monitor closed under a command or the greeting: QEMU exited (after `quit`, or it died). */
export class QmpClosed extends SriovError {
  constructor(path: string) {
    super('HOST_ERROR', `QMP socket ${path} closed (QEMU exited?)`, { object: path });
  }
}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export interface QmpConnectOptions {
  /** How long to wait for the greeting and for each answer. */
  timeoutMs?: number;
}

/** Longest QMP line taken (characters, as received in UTF-8). */
const MAX_LINE = 1024 * 1024;

export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  /** Every event since the connection opened, so a wait cannot miss one that came first. */
  readonly events: QmpEvent[] = [];
  private readonly listeners = new Set<(e: QmpEvent) => void>();
  private closed: Error | null = null;
  private greeted: ((greeting: unknown) => void) | null = null;
  private greetingFailed: ((err: Error) => void) | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly path: string,
    private readonly timeoutMs: number,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('close', () => this.fail(new QmpClosed(path)));
    socket.on('error', () => {}); // 'close' follows and says it
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const socket = await open(path);
    const client = new QmpClient(socket, path, timeoutMs);
    try {
      await client.greeting();
      await client.execute('qmp_capabilities');
      return client;
    } catch (err) {
      client.close();
      throw err;
    }
  }

  private greeting(): Promise<unknown> {
    return this.bounded('the QMP greeting (is another client connected? QEMU serves one at a time)', new Promise((resolve, reject) => {
      this.greeted = resolve;
      this.greetingFailed = reject;
      if (this.closed) reject(this.closed);
    }));
  }

  /** Runs one command; resolves with its `return`, rejects with a QmpError for QEMU's `error`. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(this.closed);
    const id = `vfleet-${this.nextId++}`;
    const answer = new Promise<T>((resolve, reject) => this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject }));
    this.socket.write(`${JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })}\n`);
    return this.bounded(`QEMU's answer to ${command}`, answer).finally(() => this.pending.delete(id));
  }

  /** Resolves with the first event (already received, or to come) that `match` accepts. */
  waitEvent(match: (e: QmpEvent) => boolean, timeoutMs: number, what: string): Promise<QmpEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    let listener: (e: QmpEvent) => void = () => {};
    const found = new Promise<QmpEvent>((resolve, reject) => {
      listener = (e) => match(e) && resolve(e);
      this.listeners.add(listener);
      if (this.closed) reject(this.closed);
    });
    return this.bounded(what, found, timeoutMs).finally(() => this.listeners.delete(listener));
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: string): void {
    if (this.closed) return;
    this.buffer += chunk;
    // QEMU's answers here are a few kilobytes; a monitor that never ends a line must not grow the agent without bound.
    if (this.buffer.length > MAX_LINE && this.buffer.lastIndexOf('\n') < this.buffer.length - MAX_LINE) {
      this.fail(new SriovError('HOST_ERROR', `QMP socket ${this.path} sent a line longer than ${MAX_LINE} characters; that is not QEMU's monitor speaking`, { object: this.path }));
      this.buffer = '';
      this.close();
      return;
    }
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.message(line);
    }
  }

  private message(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.fail(new SriovError('HOST_ERROR', `QMP socket ${this.path} sent something that is not JSON: ${line.slice(0, 80)}`, { object: this.path }));
      this.close();
      return;
    }
    if ('QMP' in msg) return this.greeted?.(msg.QMP);
    if (typeof msg.event === 'string') {
      const event = msg as unknown as QmpEvent;
      this.events.push(event);
      for (const l of this.listeners) l(event);
      return;
    }
    const pending = typeof msg.id === 'string' ? this.pending.get(msg.id) : undefined;
    if (!pending) return; // an answer to nobody (a timed-out command): nothing waits for it
    const error = msg.error as { class?: string; desc?: string } | undefined;
    if (error) pending.reject(new QmpError(error.class ?? 'GenericError', error.desc ?? 'no description', pending.command));
    else pending.resolve(msg.return);
  }

  private fail(err: Error): void {
    this.closed ??= err;
    this.greetingFailed?.(err);
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private bounded<T>(what: string, promise: Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SriovError('TIMEOUT', `no ${what} on ${this.path} within ${timeoutMs} ms`, { object: this.path })), timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}

/** The socket's connect errors as one line: no socket means no such VM here (or QEMU was started without -qmp). */
function open(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => resolve(socket));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const missing = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      const why = missing ? 'no QEMU listens there (is the VM running, started with -qmp unix:<that path>,server=on,wait=off?)' : err.message;
      reject(new SriovError(missing ? 'NOT_FOUND' : 'HOST_ERROR', `QMP socket ${path}: ${why}`, { object: path, errno: err.code, cause: err }));
    });
  });
}
