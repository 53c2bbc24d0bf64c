/**
 * A minimal JSON client for sriovd's API. It is node:http rather than fetch
 * because the daemon may listen on a unix socket (`socketPath`), and because
 * fetch (undici) costs the plugin's cold start several milliseconds to load.
 */
import type { Agent, ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { CniCode, CniError, fromApiError } from './errors.js';

interface ClientOptions {
  /** Base URL; with `socket`, only its path prefix is used. */
  server: string;
  socket?: string;
  token?: string;
}

type Send = (url: string, options: RequestOptions, callback: (res: IncomingMessage) => void) => ClientRequest;

interface Transport {
  send: Send;
  agent: Agent;
}

export class ApiClient {
  private transport?: Transport;

  constructor(private readonly opts: ClientOptions) {}

  /** The parsed JSON body of a 2xx answer (undefined for 204); a CniError otherwise. */
  async call<T>(method: string, path: string, timeoutMs: number, body?: unknown): Promise<T> {
    this.transport ??= await transportFor(this.opts.server);
    const { status, json } = await this.exchange(this.transport, method, path, timeoutMs, body);
    if (status >= 200 && status < 300) return json as T;
    throw fromApiError(status, json, `${method} ${path}`);
  }

  /** Lets the process exit without waiting for idle keep-alive sockets to time out. */
  close(): void {
    this.transport?.agent.destroy();
  }

  private exchange({ send, agent }: Transport, method: string, path: string, timeoutMs: number, body?: unknown): Promise<{ status: number; json: unknown }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    return new Promise((resolve, reject) => {
      const req = send(this.opts.server + path, { method, headers, agent, socketPath: this.opts.socket }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => reject(this.unreachable(e)));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: parseBody(Buffer.concat(chunks).toString('utf8')) }));
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e) => reject(this.unreachable(e)));
      req.end(payload);
    });
  }

  // The runtime retries ADD/DEL on "try again later"; an unreachable daemon is usually a restart in progress.
  private unreachable(e: Error): CniError {
    const where = this.opts.socket ?? this.opts.server;
    return new CniError(CniCode.TRY_AGAIN_LATER, `cannot reach sriovd at ${where}: ${e.message}`);
  }
}

// One kept-alive connection carries the POST and the polls after it. Loaded on
// first use: VERSION never needs node:http, and only https needs TLS.
async function transportFor(server: string): Promise<Transport> {
  const options = { keepAlive: true, maxSockets: 1 };
  const http = server.startsWith('https:') ? await import('node:https') : await import('node:http');
  return { send: http.request, agent: new http.Agent(options) };
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { error: { message: text.slice(0, 200) } };
  }
}
