// A pulled cable on a simulated PF: the link reads down until it is plugged back, whatever `ip link set up` says.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import { setSimCable } from '../../src/sim/cable.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';

describe('simulated cable', () => {
  let dir: string | undefined;
  after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it('pulled: the PF reads down with no speed, and its VFs lose their link; plugged: back as it was', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-cable-'));
    const file = join(dir, 'host.json');
    await initSimHost(file, { profile: 'ice', pfs: 2 });
    const host = new SriovHost(createSimPorts(file));
    await host.setNumVfs('ens1f0', 2);
    await setSimCable(file, 'ens1f0', 'down');
    const [pf, other] = (await host.inventory()).pfs;
    assert.deepEqual([pf!.linkState, pf!.linkSpeedMbps], ['down', null]);
    assert.deepEqual([other!.linkState, other!.linkSpeedMbps], ['up', 100_000]);
    const vfNetdev = pf!.vfs[0]!.netdev!;
    await host.ports.links.setUp(vfNetdev);
    assert.equal((await host.ports.sysfs.readNetdev(vfNetdev))!.operState, 'down');
    // An admin `ip link set up` does not put a cable back.
    await host.ports.links.setUp('ens1f0');
    assert.equal((await host.pf('ens1f0')).linkState, 'down');
    await setSimCable(file, pf!.pciAddress, 'up');
    assert.deepEqual([(await host.pf('ens1f0')).linkState, (await host.pf('ens1f0')).linkSpeedMbps], ['up', 100_000]);
    assert.equal((await host.ports.sysfs.readNetdev(vfNetdev))!.operState, 'up');
    await assert.rejects(setSimCable(file, 'ens9f9', 'down'), { code: 'NOT_FOUND', message: 'no PF "ens9f9" on the simulated host (its PFs: ens1f0, ens1f1)' });
  });
});
