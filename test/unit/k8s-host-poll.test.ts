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

    now = 1_000;
    await setSimCable(file, 'ens1f0', 'down');
    const down = await poll.poll();
    assert.equal(down.pfs[0]!.linkState, 'down');
    assert.deepEqual([calls.readVf, calls.list], [4, 1]);

    await host.setNumVfs('ens1f1', 2);
    assert.equal((await poll.poll()).pfs[1]!.vfs.length, 2);
    assert.deepEqual([calls.readVf, calls.list], [6, 1]);

    await poll.poll(true);
    assert.deepEqual([calls.readVf, calls.list], [12, 2]);
    now = 7_000;
    await poll.poll();
    assert.deepEqual([calls.readVf, calls.list], [18, 3]);
  });
});
