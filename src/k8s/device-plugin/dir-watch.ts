/**
 * Tells when something in the kubelet's device-plugin directory may have
 * changed (kubelet.sock re-created, a plugin socket wiped): fs.watch for
 * promptness, and a stat poll behind it, since fs.watch can miss events
 * (inotify overflow, the directory replaced, or not there yet).
 */
import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';

export interface DirWatch {
  close(): void;
}

export function watchDir(dir: string, pollMs: number, onChange: () => void): DirWatch {
  let watcher: FSWatcher | null = null;
  let watchedIno: bigint | null = null;
  let closed = false;
  const disarm = () => {
    watcher?.close();
    watcher = null;
    watchedIno = null;
  };
  // inotify follows the inode: a directory removed and made again needs a new watch.
  const arm = async () => {
    const ino = (await stat(dir, { bigint: true }).catch(() => null))?.ino ?? null;
    if (closed || (watcher && ino === watchedIno)) return;
    disarm();
    if (ino === null) return; // not there (yet): the poll still looks
    try {
      watcher = watch(dir, { persistent: false }, () => onChange());
      watcher.on('error', disarm);
      watchedIno = ino;
    } catch {
      disarm();
    }
  };
  void arm();
  const timer = setInterval(() => {
    void arm();
    onChange();
  }, pollMs);
  timer.unref();
  return {
    close() {
      closed = true;
      clearInterval(timer);
      disarm();
    },
  };
}
