/** Whether an optional host tool is installed and working. */
import { run } from '../host/linux/exec.js';

/** True when `cmd args` starts and exits 0 (typically `--version`). */
export async function commandWorks(cmd: string, args: string[]): Promise<boolean> {
  try {
    return (await run(cmd, args, { timeoutMs: 5_000 })).code === 0;
  } catch {
    return false; // not installed (ENOENT) or hung: unusable either way
  }
}
