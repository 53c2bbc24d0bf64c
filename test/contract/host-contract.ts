/**
 * The host contract: behaviour every HostPorts backend must show through
 * SriovHost. It runs against the simulated host in the unit suite and against
 * real igb NICs in the SR-IOV lab (`test/lab/`), so the simulator cannot
 * drift from what a real driver does.
 *
 * The backend under test must have a PF driven by igb (7 VFs, link up).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SriovHost } from '../../src/host/configurator.js';
import { SriovError } from '../../src/host/errors.js';
import type { PfInfo } from '../../src/host/model.js';
import { KernelError } from '../../src/host/ports.js';

export interface ContractTarget {
  host: SriovHost;
  /** A PF netdev name driven by igb, with no VFs in use by anyone else. */
  pf: string;
}

async function rejects(p: Promise<unknown>, code: string, exitCode: number): Promise<SriovError> {
  const err = await p.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SriovError, `expected SriovError, got ${err}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.exitCode, exitCode);
  return err;
}

export function hostContract(name: string, setup: () => Promise<ContractTarget>): void {
  describe(`host contract: ${name}`, () => {
    let t: ContractTarget;
    const pf = (): Promise<PfInfo> => t.host.pf(t.pf);

    it('discovers the igb PF with its PCI identity and limits', async () => {
      t = await setup();
      const info = await pf();
      assert.equal(info.name, t.pf);
      assert.match(info.pciAddress, /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
      assert.equal(info.driver, 'igb');
      assert.equal(info.vendorId, '8086');
      assert.equal(info.totalVfs, 7);
      assert.equal((await t.host.pf(info.pciAddress)).name, t.pf, 'a PF is found by PCI address too');
    });

    it('changes the VF count 3 → 5 through 0, binding the kernel VF driver', async () => {
      await t.host.setNumVfs(t.pf, 0);
      await t.host.setAutoprobe(t.pf, true);
      assert.equal(await t.host.setNumVfs(t.pf, 3), true);
      assert.equal((await pf()).numVfs, 3);
      assert.equal(await t.host.setNumVfs(t.pf, 5), true);
      const info = await pf();
      assert.equal(info.numVfs, 5);
      assert.equal(info.vfs.length, 5);
      assert.deepEqual(info.vfs.map((v) => v.index), [0, 1, 2, 3, 4]);
      for (const vf of info.vfs) {
        assert.equal(vf.driver, 'igbvf');
        assert.ok(vf.netdev, `VF ${vf.index} has a netdev`);
        assert.equal(typeof vf.iommuGroup, 'number');
      }
      assert.equal(info.autoprobe, true, 'autoprobe is restored after creating VFs');
      assert.equal(await t.host.setNumVfs(t.pf, 5), false, 'same count is a no-op');
    });

    it('the kernel itself refuses a non-zero → non-zero VF count with EBUSY', async () => {
      const info = await pf();
      await assert.rejects(t.host.ports.sysfs.writeNumVfs(info.pciAddress, 4), (e: unknown) => e instanceof KernelError && e.errno === 'EBUSY');
    });

    it('round-trips every field igb supports', async () => {
      const settings = { mac: '02:5f:00:00:00:01', vlan: 100, qos: 3, maxTxRateMbps: 100, spoofChk: false, trust: true };
      const ops = await t.host.setVfSettings(t.pf, [{ vf: 1, settings }]);
      assert.equal(ops.length, 5, 'mac, vlan, rate, spoofchk, trust');
      const vf = (await pf()).vfs[1]!;
      assert.equal(vf.mac, settings.mac);
      assert.equal(vf.vlan, 100);
      assert.equal(vf.qos, 3);
      assert.equal(vf.maxTxRateMbps, 100);
      assert.equal(vf.spoofChk, false);
      assert.equal(vf.trust, true);
      assert.deepEqual(await t.host.setVfSettings(t.pf, [{ vf: 1, settings }]), [], 'reapplying is a no-op');
      const reset = { mac: '00:00:00:00:00:00', vlan: 0, maxTxRateMbps: 0, spoofChk: true, trust: false };
      await t.host.setVfSettings(t.pf, [{ vf: 1, settings: reset }]);
      const back = (await pf()).vfs[1]!;
      assert.deepEqual([back.vlan, back.qos, back.maxTxRateMbps, back.spoofChk, back.trust], [0, 0, 0, true, false]);
      // With igbvf bound, igb reports the random MAC the VF driver picks once the admin MAC is gone.
      assert.notEqual(back.mac, settings.mac);
      assert.ok(back.mac === '00:00:00:00:00:00' || /^[0-9a-f][26ae]:/.test(back.mac), `${back.mac} is zero or locally administered`);
    });

    it('refuses link state on igb as UNSUPPORTED before applying any of the request', async () => {
      const before = await pf();
      const err = await rejects(
        t.host.setVfSettings(t.pf, [{ vf: 2, settings: { mac: '02:5f:00:00:00:02', linkState: 'enable' } }]),
        'UNSUPPORTED',
        2,
      );
      assert.match(err.message, /linkState/);
      assert.deepEqual(await pf(), before);
    });

    it('refuses bad input with exit status 2 and changes nothing', async () => {
      const before = await pf();
      await rejects(t.host.setVfSettings(t.pf, [{ vf: 7, settings: { vlan: 5 } }]), 'INVALID_ARGUMENT', 2);
      await rejects(t.host.setVfSettings(t.pf, [{ vf: 0, settings: { maxTxRateMbps: 2_000_000 } }]), 'INVALID_ARGUMENT', 2);
      await rejects(t.host.setVfSettings(t.pf, [{ vf: 0, settings: { minTxRateMbps: 10 } }]), 'UNSUPPORTED', 2);
      await rejects(t.host.setNumVfs(t.pf, 8), 'INVALID_ARGUMENT', 2);
      await rejects(t.host.pf('../../../etc'), 'INVALID_ARGUMENT', 2);
      await rejects(t.host.pf('lo'), 'NOT_FOUND', 2);
      await rejects(t.host.pf('0000:ff:1f.7'), 'NOT_SRIOV_PF', 2);
      await rejects(t.host.bindVf(t.pf, 0, 'vfio pci; rm'), 'INVALID_ARGUMENT', 2);
      assert.deepEqual(await pf(), before);
    });

    it('binds a VF to vfio-pci and back to its kernel driver', async () => {
      assert.equal(await t.host.bindVf(t.pf, 3, 'vfio-pci'), true);
      let vf = (await pf()).vfs[3]!;
      assert.equal(vf.driver, 'vfio-pci');
      assert.equal(vf.netdev, null);
      assert.equal(await t.host.bindVf(t.pf, 3, 'vfio-pci'), false, 'binding again is a no-op');
      assert.equal(await t.host.bindVf(t.pf, 3, 'kernel'), true);
      vf = (await pf()).vfs[3]!;
      assert.equal(vf.driver, 'igbvf');
      assert.ok(vf.netdev);
    });

    it('reads the PF’s counters and each VF’s, from a named source or with a reason, never invented; monotonic', async () => {
      const info = await pf();
      const first = await t.host.counters(info);
      assert.ok(first.pf, 'the PF’s own counters');
      assert.deepEqual(first.vfs.map((v) => v.index), info.vfs.map((v) => v.index));
      for (const vf of first.vfs) {
        if (vf.counters) assert.ok(vf.source === 'netdev' || vf.source === 'simulated', `igb leaves IFLA_VF_STATS empty: VF ${vf.index} from ${vf.source}`);
        else assert.match(vf.missing ?? '', /\w/, `VF ${vf.index}: why its counters cannot be read`);
      }
      const second = await t.host.counters(info);
      for (const k of ['rxBytes', 'txBytes', 'rxPackets', 'txPackets', 'rxDropped', 'txDropped'] as const) {
        assert.ok(second.pf![k] >= first.pf![k], `PF ${k} never goes back`);
        for (const vf of second.vfs) {
          const before = first.vfs.find((v) => v.index === vf.index)?.counters;
          if (before && vf.counters) assert.ok(vf.counters[k] >= before[k], `VF ${vf.index} ${k} never goes back`);
        }
      }
      await rejects(t.host.ports.counters.read('../x', 'igb', []), 'INVALID_ARGUMENT', 2);
    });

    it('configures new VFs before binding them when created with settings', async () => {
      await t.host.setNumVfs(t.pf, 0);
      await t.host.setNumVfs(t.pf, 2, { vfSettings: [{ vf: 0, settings: { mac: '02:5f:00:00:00:10', vlan: 42 } }], deviceType: 'netdevice' });
      const vf = (await pf()).vfs[0]!;
      assert.equal(vf.mac, '02:5f:00:00:00:10');
      assert.equal(vf.vlan, 42);
      assert.equal(vf.driver, 'igbvf');
      await t.host.setNumVfs(t.pf, 0);
      assert.equal((await pf()).numVfs, 0);
    });
  });
}
