/** The isolation audit judges unallocated VFs against their node policy's per-VF settings, as the agent's leftover collector does. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ControlPlane } from '../../src/controller/control-plane.js';
import type { Actor } from '../../src/domain/actor.js';
import type { HostInventory } from '../../src/host/model.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { makeHost } from '../helpers/inventory.js';

const ADMIN: Actor = { id: 'test', role: 'admin' };
const HOST = 'node1';

/** The README's example: trust on, spoof check off on VFs 0-3. */
const README_POLICY = `policies:
  - name: datacentre
    selector: { pfNames: [ens1f0] }
    numVfs: 8
    physnet: datacentre
    vfs:
      "0-3": { trust: on, spoofChk: off }
`;

/** One PF of 8 VFs as the host reports it once `trusted` VFs have trust on and spoof check off. */
function inventory(trusted: number[]): HostInventory {
  const inv = makeHost({ name: HOST, pfs: 1, vfs: 8, physnet: null }).inventory;
  for (const vf of inv.pfs[0]!.vfs) if (trusted.includes(vf.index)) Object.assign(vf, { trust: true, spoofChk: false });
  return inv;
}

describe('isolation audit: the node policy is the baseline', () => {
  let dir: string;
  let store: Store;
  let control: ControlPlane;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-audit-'));
    store = await openSqliteStore(dir);
    control = await ControlPlane.open(store);
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("the README's example policy, applied, gives no findings", async () => {
    await control.hosts.putPolicy(ADMIN, HOST, README_POLICY);
    await control.hosts.report({ id: 'local', role: 'admin' }, inventory([0, 1, 2, 3]));
    const report = await control.auditIsolation(ADMIN);
    assert.deepEqual(report.violations, []);
    assert.deepEqual(report.segments, [], 'declared settings are no unallocated configuration');
  });

  it('trust with spoof check off that no policy declared is still a finding', async () => {
    await control.hosts.putPolicy(ADMIN, HOST, README_POLICY);
    await control.hosts.report({ id: 'local', role: 'admin' }, inventory([0, 1, 2, 3, 5]));
    const report = await control.auditIsolation(ADMIN);
    assert.deepEqual(
      report.violations.map((v) => [v.kind, v.vfs]),
      [
        ['trust-without-spoofchk', [`${HOST}/ens1f0 vf 5`]],
        ['unallocated-config', [`${HOST}/ens1f0 vf 5`]],
      ],
    );
  });

  it('without the policy, the same VFs are findings', async () => {
    await control.hosts.putPolicy(ADMIN, HOST, README_POLICY.replace(/ {4}vfs:\n.*\n/, ''));
    await control.hosts.report({ id: 'local', role: 'admin' }, inventory([0, 1, 2, 3]));
    const report = await control.auditIsolation(ADMIN);
    assert.equal(report.violations.length, 8);
  });
});
