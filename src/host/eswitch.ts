/**
 * Changing a PF's eswitch mode (`devlink dev eswitch set <dev> mode
 * legacy|switchdev`) in the order its driver needs (capabilities
 * `eswitchModeChange`), together with a VF count change when one is due:
 * - `vfs-unbound` (mlx5): the VFs exist and no driver holds them;
 * - `no-vfs` (ice): no VFs while the mode changes, so they are removed and made again;
 * - `any` (netdevsim, bnxt): as they are.
 * The plan shows these steps; `runEswitchSteps` takes them, reads the mode
 * back from `devlink dev eswitch show`, and on a failure restores the
 * previous mode, VF count and bindings (some drivers change the mode and
 * still fail, so the mode is read back after a failure too).
 */
import { capabilitiesOf } from './capabilities.js';
import { SriovHost, type SetNumVfsOptions } from './configurator.js';
import { SriovError, codeForErrno } from './errors.js';
import type { EswitchMode, PfInfo } from './model.js';
import { KernelError } from './ports.js';
import { devlinkHandle } from './validate.js';

export type EswitchStep =
  /** `echo 0 > sriov_numvfs` */
  | { action: 'remove-vfs'; count: number }
  /**
   * `echo N > sriov_numvfs` (through 0 when there are VFs), settings and
   * binding as a VF count change does; `unbound`: no driver yet (`bind-vfs` follows)
   */
  | { action: 'create-vfs'; count: number; unbound?: boolean }
  /** the VFs made by `create-vfs` bound as a VF count change binds them */
  | { action: 'bind-vfs' }
  /** `echo <BDF> > driver/unbind` for each VF a driver holds */
  | { action: 'unbind-vfs' }
  /** `devlink dev eswitch set <dev> mode <to>`, read back with `devlink dev eswitch show` */
  | { action: 'set-mode'; from: EswitchMode; to: EswitchMode }
  /** each VF unbound by `unbind-vfs` back to its driver */
  | { action: 'rebind-vfs' };

/**
 * Refuses an eswitch mode change on a PF that has none to change: a driver
 * without a devlink eswitch, or one devlink reports none for. `who` names the
 * requester (a policy) in the message.
 */
export function checkEswitchChange(pf: PfInfo, who = pf.name): void {
  const caps = capabilitiesOf(pf.driver);
  const driver = pf.driver ?? 'no driver';
  let why: string | null = null;
  if (!caps.hasEswitch || caps.eswitchModeChange === null) why = `its driver ${driver} has no devlink eswitch mode vfleet can change`;
  else if (pf.eswitchMode === null) why = `devlink reports no eswitch for it (driver ${driver})`;
  if (why) {
    throw new SriovError('UNSUPPORTED', `${who}: eswitchMode: ${pf.name} (${pf.pciAddress}) cannot change its eswitch mode: ${why}; leave eswitchMode out for this PF`, {
      object: pf.name,
      field: 'eswitchMode',
      nothingChanged: true,
    });
  }
}

/** The VF count change as a step: removal, or creation (through 0). */
const countStep = (numVfs: number): EswitchStep => (numVfs === 0 ? { action: 'remove-vfs', count: 0 } : { action: 'create-vfs', count: numVfs });

/**
 * The steps that take `pf` to `mode` with `numVfs` VFs, in its driver's
 * order; [] when the mode is already `mode` (a count change alone is not an
 * eswitch step). Call checkEswitchChange first.
 */
export function eswitchSteps(pf: PfInfo, mode: EswitchMode, numVfs: number = pf.numVfs): EswitchStep[] {
  const from = pf.eswitchMode;
  if (from === null || from === mode) return [];
  const caps = capabilitiesOf(pf.driver);
  const setMode: EswitchStep = { action: 'set-mode', from, to: mode };
  const recount = numVfs !== pf.numVfs;
  switch (caps.eswitchModeChange) {
    case 'no-vfs':
      return [...(pf.numVfs > 0 ? [{ action: 'remove-vfs', count: pf.numVfs } as const] : []), setMode, ...(numVfs > 0 ? [countStep(numVfs)] : [])];
    case 'vfs-unbound': {
      // New VFs are made without a driver and bound after the mode change: one bind each, not bind-unbind-bind.
      if (recount && numVfs > 0 && caps.vfFunctions) return [{ action: 'create-vfs', count: numVfs, unbound: true }, setMode, { action: 'bind-vfs' }];
      const unbind = numVfs > 0 && caps.vfFunctions;
      return [
        ...(recount ? [countStep(numVfs)] : []),
        ...(unbind ? [{ action: 'unbind-vfs' } as const] : []),
        setMode,
        ...(unbind ? [{ action: 'rebind-vfs' } as const] : []),
      ];
    }
    default:
      return [setMode, ...(recount ? [countStep(numVfs)] : [])];
  }
}

/** One step in words, with its command: the plan shows these. */
export function describeStep(pf: PfInfo, step: EswitchStep): string {
  switch (step.action) {
    case 'remove-vfs':
      return `remove the VFs (sriov_numvfs=0)`;
    case 'create-vfs':
      return `create ${step.count} VFs (sriov_numvfs=${step.count})${step.unbound ? ' without a driver' : ''}`;
    case 'bind-vfs':
      return 'bind the new VFs to their driver';
    case 'unbind-vfs':
      return 'unbind the VFs from their drivers';
    case 'set-mode':
      return `devlink dev eswitch set ${devlinkHandle(pf.pciAddress)} mode ${step.to}`;
    case 'rebind-vfs':
      return 'rebind the VFs to their drivers';
  }
}

/** What a failure restores: the mode, the VF count and each VF's driver. */
interface Before {
  mode: EswitchMode;
  numVfs: number;
  drivers: Map<number, string>;
}

/**
 * `setEswitchMode(pf, mode)`: the mode change alone, in the driver's order
 * (VFs kept, or made again on `no-vfs` drivers). Returns false when the PF is
 * already in `mode`.
 */
export async function setEswitchMode(host: SriovHost, nameOrPci: string, mode: EswitchMode, opts: SetNumVfsOptions = {}): Promise<boolean> {
  const pf = await host.pf(nameOrPci);
  checkEswitchChange(pf);
  const steps = eswitchSteps(pf, mode);
  if (steps.length === 0) return false;
  await runEswitchSteps(host, pf, steps, opts);
  return true;
}

/**
 * Takes `steps` (from eswitchSteps for `pf`, as it is now). On a failure the
 * PF goes back to its mode, VF count and bindings before the first step, and
 * the error says what failed and how the PF was left.
 */
export async function runEswitchSteps(host: SriovHost, pf: PfInfo, steps: EswitchStep[], opts: SetNumVfsOptions = {}): Promise<void> {
  const before: Before = {
    mode: pf.eswitchMode!,
    numVfs: pf.numVfs,
    drivers: new Map(pf.vfs.flatMap((vf) => (vf.driver ? [[vf.index, vf.driver] as const] : []))),
  };
  let unbound = new Map<number, string>();
  try {
    for (const step of steps) {
      switch (step.action) {
        case 'remove-vfs':
          await host.setNumVfs(pf.pciAddress, 0);
          break;
        case 'create-vfs':
          await host.setNumVfs(pf.pciAddress, step.count, { ...opts, bind: !step.unbound });
          break;
        case 'bind-vfs': {
          const now = await host.pf(pf.pciAddress);
          const driver = SriovHost.newVfDriver(pf, opts.deviceType);
          if (driver) await bindEach(host, now, now.vfs.map((vf) => [vf.index, driver]));
          break;
        }
        case 'unbind-vfs':
          unbound = await unbindAll(host, await host.pf(pf.pciAddress));
          break;
        case 'set-mode':
          await setModeVerified(host, pf, step.to);
          break;
        case 'rebind-vfs':
          await bindEach(host, await host.pf(pf.pciAddress), [...unbound]);
          break;
      }
    }
  } catch (err) {
    throw await restore(host, pf, before, err);
  }
}

/** Binds each listed VF, keeping one model of the PF rather than reading it again per VF. */
async function bindEach(host: SriovHost, pf: PfInfo, binds: Array<[vf: number, driver: string]>): Promise<void> {
  let now = pf;
  for (const [vf, driver] of binds) now = (await host.bindVfOn(now, vf, driver)) ?? now;
}

/** Unbinds every VF a driver holds (`echo <BDF> > driver/unbind`); returns them with their drivers. */
async function unbindAll(host: SriovHost, pf: PfInfo): Promise<Map<number, string>> {
  const bound = new Map(pf.vfs.flatMap((vf) => (vf.driver ? [[vf.index, vf.driver] as const] : [])));
  for (const vf of pf.vfs) {
    if (!vf.driver) continue;
    await kernel(`${pf.name} vf ${vf.index} unbind from ${vf.driver}`, pf, () => host.ports.drivers.unbind(vf.pciAddress));
  }
  return bound;
}

/** `devlink dev eswitch set`, then `devlink dev eswitch show`: the mode it reads is the result, whatever the set answered. */
async function setModeVerified(host: SriovHost, pf: PfInfo, mode: EswitchMode): Promise<void> {
  const devlink = host.ports.devlink;
  let failure: unknown = null;
  try {
    await devlink.setEswitchMode(pf.pciAddress, mode);
  } catch (err) {
    failure = err;
  }
  const now = await devlink.eswitchMode(pf.pciAddress);
  if (failure) throw asHostError(`${pf.name} eswitch mode ${mode}`, pf, failure, now === mode ? `; devlink shows mode ${now} all the same` : '');
  if (now !== mode) {
    throw new SriovError('VERIFY_FAILED', `${pf.name}: devlink accepted eswitch mode ${mode} but shows ${now ?? 'no eswitch'}`, { object: pf.name });
  }
}

/** After a failed step: the mode back first (its order needs the VFs as they were), then the count, then the drivers. */
async function restore(host: SriovHost, pf: PfInfo, before: Before, failure: unknown): Promise<SriovError> {
  const err = failure instanceof SriovError ? failure : new SriovError('HOST_ERROR', `${pf.name}: ${failure instanceof Error ? failure.message : String(failure)}`, { cause: failure });
  let outcome: string;
  try {
    let now = await host.pf(pf.pciAddress);
    if (now.eswitchMode !== before.mode) {
      const caps = capabilitiesOf(pf.driver);
      if (caps.eswitchModeChange === 'no-vfs' && now.numVfs > 0) await host.setNumVfs(pf.pciAddress, 0);
      if (caps.eswitchModeChange === 'vfs-unbound' && caps.vfFunctions) await unbindAll(host, now);
      await setModeVerified(host, pf, before.mode);
      now = await host.pf(pf.pciAddress);
    }
    if (now.numVfs !== before.numVfs) await host.setNumVfs(pf.pciAddress, before.numVfs);
    if (capabilitiesOf(pf.driver).vfFunctions) {
      const now = await host.pf(pf.pciAddress);
      await bindEach(host, now, now.vfs.flatMap((vf) => {
        const driver = before.drivers.get(vf.index);
        return driver && vf.driver !== driver ? [[vf.index, driver] as [number, string]] : [];
      }));
    }
    outcome = `${pf.name} restored to eswitch mode ${before.mode} with ${before.numVfs} VFs`;
  } catch (again) {
    outcome = `${pf.name} could not be restored to eswitch mode ${before.mode} with ${before.numVfs} VFs: ${again instanceof Error ? again.message : String(again)}`;
  }
  return new SriovError(err.code, `${err.message}; ${outcome}`, { ...err.details, object: pf.name, cause: err });
}

async function kernel(what: string, pf: PfInfo, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    throw asHostError(what, pf, err);
  }
}

function asHostError(what: string, pf: PfInfo, err: unknown, extra = ''): unknown {
  if (err instanceof KernelError) {
    return new SriovError(codeForErrno(err.errno), `${what}: ${err.message}${extra}`, { object: pf.name, errno: err.errno, cause: err });
  }
  if (err instanceof SriovError && extra) return new SriovError(err.code, `${err.message}${extra}`, { ...err.details, cause: err });
  return err;
}
