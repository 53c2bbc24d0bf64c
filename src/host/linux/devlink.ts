/**
 * The eswitch mode of a PF from devlink (field notes §4). Most NICs and many
 * hosts have no devlink at all, so every failure means "no eswitch": null.
 */
import type { EswitchMode } from '../model.js';
import { KernelError, type Devlink, type DevlinkPortFacts, type DevlinkRateFacts } from '../ports.js';
import { parsePciAddress } from '../validate.js';
import { run } from './exec.js';

/** `{"dev":{"pci/0000:3b:00.0":{"mode":"switchdev",...}}}` → the mode, else null. */
function modeFrom(json: unknown, handle: string): EswitchMode | null {
  const dev = (json as { dev?: Record<string, { mode?: unknown }> } | null)?.dev?.[handle];
  return dev?.mode === 'legacy' || dev?.mode === 'switchdev' ? dev.mode : null;
}

const todo = (what: string): never => {
  throw new KernelError('EOPNOTSUPP', what, `${what}: not implemented yet`);
};

export class LinuxDevlink implements Devlink {
  async setEswitchMode(): Promise<void> {
    todo('devlink dev eswitch set');
  }
  async ports(): Promise<DevlinkPortFacts[]> {
    return [];
  }
  async rates(): Promise<DevlinkRateFacts[]> {
    return [];
  }
  async addRateNode(): Promise<void> {
    todo('devlink port function rate add');
  }
  async setRate(): Promise<void> {
    todo('devlink port function rate set');
  }
  async deleteRateNode(): Promise<void> {
    todo('devlink port function rate del');
  }

  constructor(private readonly devlinkPath = 'devlink') {}

  /** `devlink -j dev eswitch show pci/<BDF>` */
  async eswitchMode(pciAddress: string): Promise<EswitchMode | null> {
    const handle = `pci/${parsePciAddress(pciAddress)}`;
    try {
      const res = await run(this.devlinkPath, ['-j', 'dev', 'eswitch', 'show', handle], { timeoutMs: 5_000 });
      // "kernel answers: No such device" and {"dev":{}} when the driver has no eswitch.
      return res.code === 0 ? modeFrom(JSON.parse(res.stdout), handle) : null;
    } catch {
      // ENOENT: devlink is not installed; bad JSON or a timeout: no usable answer.
      return null;
    }
  }
}
