/**
 * What the QMP adapter remembers of a VM that migrated away: once the VM
 * runs on the destination the adapter ends the source QEMU (as libvirt
 * does), because a QEMU left in `postmigrate` keeps the VF's vfio device
 * open and the source VF could never be unbound and scrubbed. With QEMU gone
 * nothing on this host says the VM left, so the result is written first to
 * `<qmpDir>/<vm>.migrated`: an agent that restarts before the controller saw
 * the result re-runs the migrate task and finds it here.
 */
import { constants } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { MigrateResult } from './hypervisor.js';
import { qmpDeparturePath } from './validate.js';

interface Departure {
  vm: string;
  destination: string;
  result: MigrateResult;
  at: string;
}

export class Departures {
  constructor(private readonly qmpDir: string) {}

  /** Written before QEMU is told to quit; atomic, and never through a link someone left at that name. */
  async record(vm: string, destination: string, result: MigrateResult): Promise<void> {
    const path = qmpDeparturePath(this.qmpDir, vm);
    const tmp = `${path}.${randomBytes(4).toString('hex')}`;
    const body: Departure = { vm, destination, result, at: new Date().toISOString() };
    await writeFile(tmp, `${JSON.stringify(body)}\n`, { flag: 'wx', mode: 0o600 });
    await rename(tmp, path).catch(async (e: unknown) => {
      await rm(tmp, { force: true });
      throw e;
    });
  }

  /** The result of the VM's migration to `destination`, if it left this host that way; a record of another is not it. */
  async find(vm: string, destination: string): Promise<MigrateResult | null> {
    const departure = await this.read(qmpDeparturePath(this.qmpDir, vm));
    return departure && departure.vm === vm && departure.destination === destination ? departure.result : null;
  }

  /** The VM runs here again (it came back): an old departure says nothing about it now. */
  async forget(vm: string): Promise<void> {
    await rm(qmpDeparturePath(this.qmpDir, vm), { force: true });
  }

  private async read(path: string): Promise<Departure | null> {
    // O_NOFOLLOW (ELOOP on a symbolic link): the record is a file this adapter wrote, nothing it points to.
    const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
    if (!file) return null;
    try {
      const parsed = JSON.parse(await file.readFile('utf8')) as Partial<Departure>;
      const ok = typeof parsed.vm === 'string' && typeof parsed.destination === 'string' && Array.isArray(parsed.result?.statuses);
      return ok ? (parsed as Departure) : null;
    } catch {
      return null;
    } finally {
      await file.close();
    }
  }
}
