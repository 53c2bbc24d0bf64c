/** The running kernel's boot id: agents on one kernel report the same one (and so share its network namespaces). */
import { readFile } from 'node:fs/promises';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `cat /proc/sys/kernel/random/boot_id`; null when it is missing or not a UUID (an odd /proc). */
export async function readBootId(path = '/proc/sys/kernel/random/boot_id'): Promise<string | null> {
  const text = await readFile(path, 'utf8').catch(() => null);
  const id = text?.trim().toLowerCase() ?? '';
  return UUID.test(id) ? id : null;
}
