/**
 * Hands a document to a tool that reads it from a file (virsh attach-device,
 * virt-xml-validate). The file goes into a fresh mkdtemp directory, so no
 * other user of /tmp can guess or pre-plant its name; it is created 0600, as
 * it describes a VM's devices; and it is removed whatever the tool did.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function withTempFile<T>(name: string, content: string, use: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-vm-'));
  try {
    const path = join(dir, name);
    await writeFile(path, content, { mode: 0o600, flag: 'wx' });
    return await use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
