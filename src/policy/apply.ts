/**
 * Applies a plan PF by PF. Each step is itself idempotent, so a plan that is
 * interrupted is finished by running `apply` again.
 */
import type { SriovHost } from '../host/configurator.js';
import { eswitchSteps, runEswitchSteps } from '../host/eswitch.js';
import { isEmpty, type PfPlan } from './plan.js';

export async function applyPlan(host: SriovHost, plans: PfPlan[]): Promise<void> {
  for (const plan of plans.filter((p) => !isEmpty(p))) await applyPf(host, plan);
}

async function applyPf(host: SriovHost, plan: PfPlan): Promise<void> {
  const pf = plan.pf.pciAddress;
  const created = { vfSettings: plan.vfRequests, deviceType: plan.policy.deviceType };
  if (plan.eswitchMode) {
    // In the driver's order, the VF count change among the steps, taken from the PF as it is now.
    const now = await host.pf(pf);
    await runEswitchSteps(host, now, eswitchSteps(now, plan.eswitchMode.to, plan.policy.numVfs), created);
    if (plan.numVfs) await host.setNumVfs(pf, plan.numVfs.to, created);
  } else if (plan.numVfs) {
    // New VFs get their settings before a driver binds them (field notes §2).
    await host.setNumVfs(pf, plan.numVfs.to, created);
  }
  if (plan.mtu) await host.setMtu(pf, plan.mtu.to!);
  await host.setVfSettings(pf, plan.vfRequests);
  for (const b of plan.binds) await host.bindVf(pf, b.vf, b.to ?? 'kernel');
  if (plan.autoprobe) await host.setAutoprobe(pf, plan.autoprobe.to);
}
