import { SriovError } from './errors.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until it returns a value other than undefined. VF creation is
 * asynchronous on real NICs (sysfs entries appear after the write returns),
 * so every wait is bounded and says what it waited for.
 */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) {
      throw new SriovError('TIMEOUT', `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    }
    await sleep(delay);
  }
}

export { sleep };
