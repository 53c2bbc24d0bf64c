/**
 * A pulled (or plugged) cable on a simulated PF: the PF stays administratively
 * up but loses carrier, so its netdev reads `operstate` down with no speed,
 * and VFs whose link follows the PF (`state auto`) lose theirs, as on a real
 * NIC. Tests use it to break a PF on purpose.
 */
import { SriovError } from '../host/errors.js';
import { shown } from '../host/validate.js';
import { updateSimState, type SimPf } from './state.js';

/** What the PF's netdev reports: up only when it is set up and has carrier. */
export function pfOperState(pf: SimPf): 'up' | 'down' {
  return pf.operState === 'up' && pf.noCarrier !== true ? 'up' : 'down';
}

/** Plugs (`up`) or pulls (`down`) the cable of the PF named `pf` (netdev name or PCI address). */
export async function setSimCable(file: string, pf: string, state: 'up' | 'down'): Promise<void> {
  await updateSimState(file, (s) => {
    const found = s.pfs.find((p) => p.name === pf || p.pciAddress === pf.toLowerCase());
    if (!found) throw new SriovError('NOT_FOUND', `no PF ${shown(pf)} on the simulated host (its PFs: ${s.pfs.map((p) => p.name).join(', ')})`, { object: pf });
    if (state === 'down') found.noCarrier = true;
    else delete found.noCarrier;
  });
}
