// sriovctl pf drain / undrain against a real controller in this process
// (SQLite store, ControlPlane, HTTP server): the round trip through the API,
// what is printed (what is still on the PF), host show's DRAINED column,
// and refusals before and after the request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PfDrainState } from '../../src/controller/pf-drain.js';
import type { Allocation, HostRecord } from '../../src/domain/types.js';
import { remoteCli } from '../helpers/cli.js';
import { pfPci } from '../helpers/inventory.js';
import { startRemoteController, type RemoteController } from '../helpers/remote-controller.js';

const HOST = 'node1';

let rc: RemoteController;

before(async () => {
  rc = await startRemoteController('vfleet-cli-drain-', HOST);
  await ok(['tenant', 'create', 'a']);
  await ok(['network', 'create', 'red', '--tenant', 'a', '--physnet', 'fabric', '--vlan', '100']);
});

after(() => rc.close());

const { ok, json, fails } = remoteCli(() => rc);

describe('sriovctl pf drain / undrain', () => {
  let held: Allocation;

  it('drains a PF, printing what is still on it; new allocations go elsewhere; host show says so', async () => {
    held = await json<Allocation>(['alloc', 'create', '--network', 'red', '--workload', 'w1', '--no-wait']);
    assert.equal(held.pf, 'ens1f0');
    const state = await json<PfDrainState>(['pf', 'drain', `${HOST}/ens1f0`]);
    assert.deepEqual(
      { ...state, holding: state.holding.map((a) => a.id) },
      { host: HOST, pf: 'ens1f0', pfPciAddress: pfPci(0), drained: true, changed: true, holding: [held.id] },
    );
    const text = await ok(['pf', 'drain', `${HOST}/ens1f0`]);
    assert.match(text, new RegExp(`^${HOST}/ens1f0 \\(${pfPci(0)}\\) already drained: it takes no new allocation\\n1 allocation still on it \\(move or release them to free it\\):\\n`));
    assert.match(text, new RegExp(`^ID\\s+VF\\s+PCI\\s+TENANT\\s+NETWORK\\s+WORKLOAD\\s+STATE\\n${held.id.slice(0, 8)}\\s+0\\s+${held.pciAddress.replace('.', '\\.')}\\s+a\\s+red\\s+container/w1\\s+pending$`, 'm'));

    assert.equal((await json<Allocation>(['alloc', 'create', '--network', 'red', '--workload', 'w2', '--no-wait'])).pf, 'ens2f0');
    assert.deepEqual((await json<HostRecord>(['host', 'show', HOST])).drainedPfs, [pfPci(0)]);
    const shown = await ok(['host', 'show', HOST]);
    assert.match(shown, /^PF\s+PCI\s+PHYSNET\s+DEVICE TYPE\s+DRAINED$/m);
    assert.match(shown, new RegExp(`^ens1f0\\s+${pfPci(0)}\\s+fabric\\s+netdevice\\s+yes$`, 'm'));
    assert.match(shown, new RegExp(`^ens2f0\\s+${pfPci(1)}\\s+fabric\\s+netdevice\\s+no$`, 'm'));
  });

  it('undrains by PCI address; again is a no-op that says so', async () => {
    const state = await json<PfDrainState>(['pf', 'undrain', `${HOST}/${pfPci(0)}`]);
    assert.deepEqual([state.pf, state.drained, state.changed, state.holding.length], ['ens1f0', false, true, 1]);
    assert.match(await ok(['pf', 'undrain', `${HOST}/ens1f0`]), /^node1\/ens1f0 \(0000:10:00\.0\) already undrained: it takes new allocations\n1 allocation still on it:\n/);
    assert.deepEqual((await json<HostRecord>(['host', 'show', HOST])).drainedPfs, []);
    assert.match(await ok(['pf', 'drain', `${HOST}/ens2f0`]), /^node1\/ens2f0 \(0000:11:00\.0\) drained: it takes no new allocation\n1 allocation still on it/);
    await ok(['pf', 'undrain', `${HOST}/ens2f0`]);
  });

  it('refuses a malformed target before any request (exit 2), and an unknown PF or host on the server, naming what exists', async () => {
    for (const bad of ['node1', 'node1/', 'node1/../../sys', 'Node_1/ens1f0']) {
      await fails(['pf', 'drain', bad, '--server', 'http://127.0.0.1:1'], 2, /INVALID_ARGUMENT/);
    }
    await fails(['pf', 'drain', `${HOST}/ens9f0`], 2, /NOT_FOUND: PF ens9f0 is not in host node1's last report; its PFs: ens1f0 \(0000:10:00\.0\), ens2f0 \(0000:11:00\.0\)/);
    await fails(['pf', 'undrain', 'node9/ens1f0'], 2, /NOT_FOUND: host node9 is not known; the hosts are: node1/);
  });

  it('is refused to a tenant token, which changes nothing', async () => {
    const tenant = JSON.parse(await ok(['token', 'create', '--role', 'tenant:a', '-o', 'json'])) as { token: string };
    await fails(['pf', 'drain', `${HOST}/ens1f0`], 2, /FORBIDDEN: tenant:a may not drain PFs/, { SRIOV_TOKEN: tenant.token });
    assert.deepEqual((await json<HostRecord>(['host', 'show', HOST])).drainedPfs, []);
  });
});
