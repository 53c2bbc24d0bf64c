/**
 * The daemon's log: pino underneath, so `--log-format json` gives machines
 * one JSON object per line; the default `text` format turns each record into
 * one line a person reads (`12:04:31.118 INFO  POST /v1/allocations 201 4.2 ms
 * tenant:blue`), without a pretty-printer dependency.
 */
import { format } from 'node:util';
import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

const LABELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
/** Fields every pino record carries, and the request log's fields (its message says them); the rest are shown as key=value. */
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'err', 'reqId', 'req', 'res', 'responseTime', 'request']);

/**
 * Level and format come checked from the command line (commander's choices).
 * Text is formatted straight from the log call's arguments: pino's JSON of
 * the record, parsed back to make the line, was a tenth of a controller's CPU
 * at a few hundred requests a second (one line per change). `write` is for tests.
 */
export function createLogger(level: LogLevel, format: LogFormat, write: (line: string) => void = (line) => void process.stdout.write(line)): Logger {
  if (format === 'json') return pino({ level });
  return pino(
    {
      level,
      hooks: {
        logMethod(args, _method, levelValue) {
          write(textLine(levelValue, Date.now(), { ...this.bindings(), ...fieldsOf(args) }, messageOf(args)));
        },
      },
    },
    { write: () => {} },
  );
}

/** pino's call shapes: (fields, msg, ...values), (err, msg?), (msg, ...values). */
function fieldsOf(args: unknown[]): Record<string, unknown> {
  const first = args[0];
  if (first instanceof Error) return { err: first };
  return first !== null && typeof first === 'object' ? (first as Record<string, unknown>) : {};
}

function messageOf(args: unknown[]): string {
  const first = args[0];
  const rest = typeof first === 'string' ? args : args.slice(1);
  if (rest.length > 0) return format(...rest);
  return first instanceof Error ? first.message : '';
}

/** One record as a line of text: time, level, message, extra fields, then an error's stack. */
export function textLine(level: number, time: number, fields: Record<string, unknown>, msg: string): string {
  const label = LABELS[level] ?? String(level);
  let extra = '';
  for (const key of Object.keys(fields)) {
    if (HIDDEN.has(key)) continue;
    const value = fields[key];
    extra += ` ${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`;
  }
  const err = fields.err as { stack?: string; message?: string } | undefined;
  const stack = err ? `\n${err.stack ?? err.message ?? ''}` : '';
  return `${new Date(time).toISOString().slice(11, 23)} ${label} ${msg}${extra}${stack}\n`;
}
