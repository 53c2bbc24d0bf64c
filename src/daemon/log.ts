/**
 * The daemon's log: pino underneath, so `--log-format json` gives machines
 * one JSON object per line; the default `text` format turns each record into
 * one line a person reads (`12:04:31.118 INFO  POST /v1/allocations 201 4.2 ms
 * tenant:blue`), without a pretty-printer dependency.
 */
import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevel = (typeof LOG_LEVELS)[number];

const LABELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
/** Fields every pino record carries, and the request log's fields (its message says them); the rest are shown as key=value. */
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'err', 'reqId', 'req', 'res', 'responseTime', 'request']);

/** Level and format come checked from the command line (commander's choices). */
export function createLogger(level: LogLevel, format: LogFormat): Logger {
  return format === 'json' ? pino({ level }) : pino({ level }, { write: (line: string) => void process.stdout.write(textLine(line)) });
}

/** One pino JSON record as a line of text: time, level, message, extra fields, then an error's stack. */
export function textLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : json + '\n';
  }
  const time = new Date(typeof record.time === 'number' ? record.time : Date.now()).toISOString().slice(11, 23);
  const label = LABELS[record.level as number] ?? String(record.level);
  const extra = Object.entries(record)
    .filter(([key]) => !HIDDEN.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const err = record.err as { stack?: string; message?: string } | undefined;
  const stack = err ? `\n${err.stack ?? err.message ?? ''}` : '';
  return `${time} ${label} ${[record.msg ?? '', ...extra].join(' ')}${stack}\n`;
}
