/**
 * The agent's own network namespace (the host's, where the PFs live). A VF
 * is handed only to a workload's namespace: moving one "into" the agent's
 * own would leave a tenant's VF, configured as its network says, on the host
 * itself. `/proc/1/ns/net`, `/proc/self/ns/net` or a bind mount of either
 * all name it, so the check compares the namespace inodes (`stat -L`), not paths.
 */
import { stat } from 'node:fs/promises';
import { KernelError } from './ports.js';

const OWN_NETNS = '/proc/self/ns/net';

export async function isOwnNetns(path: string): Promise<boolean> {
  const [target, own] = await Promise.all([stat(path).catch(() => null), stat(OWN_NETNS).catch(() => null)]);
  return target !== null && own !== null && target.dev === own.dev && target.ino === own.ino;
}

/** Refuses, changing nothing, when `path` is the agent's own network namespace. */
export async function refuseOwnNetns(path: string, op: string): Promise<void> {
  if (await isOwnNetns(path)) {
    throw new KernelError('EPERM', op, `${op}: ${path} is the host's own network namespace (the agent's); a VF goes only into a workload's namespace; nothing changed`);
  }
}
