/**
 * The hook hypervisor (controller/hook-hypervisor.ts) through the Hypervisor
 * contract. Behind it stands an orchestrator (OpenStack, KubeVirt) that
 * moves the VM and plugs the destination VF itself, then tells the API; here
 * a small model of one, which moves (or, once broken, aborts) when the
 * controller waits to hear from it, as `POST /v1/migrations/:id/complete`
 * and `.../abort` would tell it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HookHypervisor, HookSignals } from '../../src/controller/hook-hypervisor.js';
import { SriovError } from '../../src/host/errors.js';
import { hypervisorContract, type HypervisorWorld } from '../contract/hypervisor.contract.js';

const VM = 'vm1';
const PRIMARY = { device: 'hostdev-0a1b2c3d', pciAddress: '0000:3b:02.0', mac: '02:5f:00:00:00:07', standby: 'net-0a1b2c3d' };
const DEST_VF = '0000:3b:12.0';

/** The orchestrator's VM: its NICs on each side. */
class Orchestrator {
  readonly devices = { source: [PRIMARY.standby, PRIMARY.device], destination: [] as string[] };
  broken: string | null = null;
  moves = 0;

  constructor(private readonly signals: HookSignals) {}

  /** Called when the controller waits on `vm`: the orchestrator does its move and reports it, once. */
  heard(vm: string): void {
    if (vm !== VM || this.moves > 0) return;
    this.moves++;
    if (this.broken) {
      this.signals.abort(vm, this.broken);
      return;
    }
    // Its own failover dance: the source VF out, the VM over, the destination VF in.
    this.devices.source = [];
    this.devices.destination = [PRIMARY.standby, PRIMARY.device];
    this.signals.complete(vm);
  }
}

/** HookSignals that let the model orchestrator know the controller is waiting. */
class ObservedSignals extends HookSignals {
  orchestrator: Orchestrator | null = null;
  override outcome(vm: string) {
    const waiting = super.outcome(vm);
    this.orchestrator?.heard(vm);
    return waiting;
  }
}

function hookWorld(): HypervisorWorld & { signals: ObservedSignals; orchestrator: Orchestrator } {
  const signals = new ObservedSignals();
  const orchestrator = new Orchestrator(signals);
  signals.orchestrator = orchestrator;
  // The controller started a hook migration of the VM (MigrationService.start).
  signals.reset(VM);
  const hook = new HookHypervisor(signals);
  return {
    signals,
    orchestrator,
    source: hook,
    destination: hook,
    vm: VM,
    migrateTo: 'host-b',
    primary: PRIMARY,
    destinationVf: DEST_VF,
    devices: async (side) => [...orchestrator.devices[side]],
    breakNextMigration: async () => {
      orchestrator.broken = 'the orchestrator aborted: live migration of instance vm1 failed';
    },
    close: async () => {},
  };
}

// The orchestrator plugs the destination VF itself: plug and unplug are its to do, not a guest's (guest: false).
hypervisorContract({ name: 'hook (an orchestrator moves the VM)', guest: false, qemuStatuses: false, world: async () => hookWorld() });

describe('hook hypervisor', () => {
  it('plug and unplug wait for the orchestrator, and answer at once once it has moved the VM', async () => {
    const w = hookWorld();
    const plugged = w.destination.plug({ vm: VM, pciAddress: DEST_VF, device: PRIMARY.device, mac: PRIMARY.mac, failoverPairId: PRIMARY.standby });
    await plugged;
    assert.equal(w.orchestrator.moves, 1);
    await w.source.unplug({ vm: VM, device: PRIMARY.device });
    assert.equal(w.orchestrator.moves, 1, 'asked again, nothing more is done');
    assert.deepEqual(await w.devices('destination'), [PRIMARY.standby, PRIMARY.device]);
  });

  it('an abort reaches every operation waiting on the VM, naming the reason', async () => {
    const w = hookWorld();
    w.signals.orchestrator = null; // an orchestrator that says nothing until the operator aborts
    const waiting = [w.source.migrate({ vm: VM, destination: 'host-b', sourceDevice: PRIMARY.device }), w.destination.plug({ vm: VM, pciAddress: DEST_VF, device: PRIMARY.device, mac: PRIMARY.mac, failoverPairId: null })];
    w.signals.abort(VM, 'aborted by operator/op');
    for (const op of waiting) await assert.rejects(op, (e: unknown) => e instanceof SriovError && e.code === 'HOST_ERROR' && e.message.includes('aborted by operator/op'));
  });

  it('a VM with no hook migration started here is NOT_FOUND at once, not waited on forever', async () => {
    const hook = new HookHypervisor(new HookSignals());
    await assert.rejects(hook.migrate({ vm: VM, destination: 'qemu+ssh://host-b/system', sourceDevice: PRIMARY.device }), (e: unknown) => e instanceof SriovError && e.code === 'NOT_FOUND' && /--hypervisor hook/.test(e.message));
  });
});
