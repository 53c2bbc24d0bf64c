/** Shared, not a closure per call: a mutex on every allocation's path makes its garbage there. */
const settled = (): undefined => undefined;

/** An async mutex: callers run one at a time, in arrival order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  /** `fn` may return a value: a caller that waits for nothing inside needs no async frame of its own. */
  run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    const result = this.tail.then(fn);
    // The next caller waits for this one to settle, whether it succeeded or not.
    this.tail = result.catch(settled);
    return result;
  }
}
