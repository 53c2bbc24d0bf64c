/** An async mutex: callers run one at a time, in arrival order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  /** Callers running or waiting: none, and a caller may run at once. */
  private held = 0;
  /** Shared, not a closure per call: a mutex on every allocation's path makes its garbage there. */
  private readonly release = (): void => {
    this.held--;
  };

  /** `fn` may return a value: a caller that waits for nothing inside needs no async frame of its own. */
  run<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    this.held++;
    const result = this.tail.then(fn);
    // The next caller waits for this one to settle, whether it succeeded or not.
    this.tail = result.then(this.release, this.release);
    return result;
  }

  /**
   * As `run`, but while no caller runs or waits `fn` runs at once, and what
   * it returns is returned as it is: a caller whose `fn` waits for nothing
   * (an allocation's decision, mostly) then makes no promise at all here,
   * where the two of `run` and the wait for them were garbage on every
   * allocation. A throw is thrown to the caller.
   */
  now<T>(fn: () => T | Promise<T>): T | Promise<T> {
    if (this.held > 0) return this.run(fn);
    const value = fn();
    if (!(value instanceof Promise)) return value;
    this.held++;
    this.tail = value.then(this.release, this.release);
    return value;
  }
}
