// The device plugin's cheap host poll: PF facts every time, VF devices only when they may have changed.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SriovHost } from '../../src/host/configurator.js';
import type { HostPorts } from '../../src/host/ports.js';
import { LocalInventoryPoll } from '../../src/k8s/host-poll.js';
import { setSimCable } from '../../src/sim/cable.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { initSimHost } from '../../src/sim/state.js';

describe('local inventory poll', () => {
  let dir: string | undefined;
  after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it('reads VFs again only on a changed VF list, on request or when due; the link every time', async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-poll-'));
    const file = join(dir, 'host.json');
    await initSimHost(file, { profile: 'ice', pfs: 2 });
    const ports = createSimPorts(file);
    const host = new SriovHost(ports);
    await host.setNumVfs('ens1f0', 4);
    const calls = { readVf: 0, list: 0 };
    const counted: HostPorts = {
      ...ports,
      sysfs: {
        ...ports.sysfs,
        readVf: (a) => (calls.readVf++, ports.sysfs.readVf(a)),
        listSriovPfs: () => (calls.list++, ports.sysfs.listSriovPfs()),
      },
    };
    let now = 0;
    const poll = new LocalInventoryPoll(counted, 5_000, () => now);
    const first = await poll.poll();
    assert.deepEqual([calls.readVf, calls.list], [4, 1]);
    assert.deepEqual(
      first.pfs.map((p) => [p.name, p.linkState, p.vfs.length]),
      [
        ['ens1f0', 'up', 4],
        ['ens1f1', 'up', 0],
      ],
    );
    const full = await host.inventory();
    assert.deepEqual(first.pfs[0]!.vfs, full.pfs[0]!.vfs.map(({ index, pciAddress, driver, iommuGroup }) => ({ index, pciAddress, driver, iommuGroup })));

    // ens1f0's VFs are new to the poll: read again while they may still be binding (5 s), then left alone.
    now = 1_000;
    await setSimCable(file, 'ens1f0', 'down');
    assert.equal((await poll.poll()).pfs[0]!.linkState, 'down');
    assert.deepEqual([calls.readVf, calls.list], [8, 1]);
    now = 5_000; // due: the PF list and every VF
    await poll.poll();
    assert.deepEqual([calls.readVf, calls.list], [12, 2]);
    now = 6_000; // neither hot nor due: the PFs' links only
    await setSimCable(file, 'ens1f0', 'up');
    assert.equal((await poll.poll()).pfs[0]!.linkState, 'up');
    assert.deepEqual([calls.readVf, calls.list], [12, 2]);

    // A new VF list is read at once, and again for a while.
    await host.setNumVfs('ens1f1', 2);
    assert.equal((await poll.poll()).pfs[1]!.vfs.length, 2);
    assert.deepEqual([calls.readVf, calls.list], [14, 2]);
    now = 7_000;
    await poll.poll();
    assert.deepEqual([calls.readVf, calls.list], [16, 2]);

    // On request (the controller's view changed): everything, and every PF hot for a while.
    await poll.poll(true);
    assert.deepEqual([calls.readVf, calls.list], [22, 3]);
    now = 8_000;
    await poll.poll();
    assert.deepEqual([calls.readVf, calls.list], [28, 3]);
  });
});
