/**
 * Reads Prometheus' text format back into samples, for tests that check
 * /metrics' values: `value(text, name, labels)` is the one sample of `name`
 * with exactly those labels.
 */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseProm(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return out;
}

const same = (a: Record<string, string>, b: Record<string, string | number>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === String(v));

/** The value of the sample `name{labels}` (labels exactly), or undefined when there is none. */
export function value(text: string | PromSample[], name: string, labels: Record<string, string | number> = {}): number | undefined {
  const samples = typeof text === 'string' ? parseProm(text) : text;
  return samples.find((s) => s.name === name && same(s.labels, labels))?.value;
}

/** Every sample of `name`. */
export function samplesOf(text: string | PromSample[], name: string): PromSample[] {
  return (typeof text === 'string' ? parseProm(text) : text).filter((s) => s.name === name);
}
