// Lab suite (needs root and the SR-IOV lab): sriovd — controller and agent —
// on real igb, driven through sriovctl's remote mode, checked with ip -j.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../helpers/daemon.js';
import { startLabDaemon, type LabDaemon } from './lab-daemon.js';
import { labPfs, rawVfs } from './lab-host.js';


describe('sriovd in the SR-IOV lab', () => {
  let lab: LabDaemon;
  let pf: string;
  const ctl = (...args: string[]) => lab.ctl(...args);

  before(async () => {
    [pf] = (await labPfs()) as [string];
    lab = await startLabDaemon();
  });

  after(async () => lab?.close());

  it('applies a stored node policy on physnet lab through the agent', async () => {
    const policy = join(lab.dir, 'policy.yaml');
    await writeFile(policy, `policies:\n  - name: lab\n    selector: { pfNames: [${pf}] }\n    numVfs: 4\n    physnet: lab\n`);
    await ctl('host', 'apply', '-f', policy);
    await eventually(`4 VFs on ${pf}`, 60_000, async () => (rawVfs(pf).length === 4 ? true : undefined));
  });

  it('alloc create configures the VF on its PF: MAC and VLAN 100 visible in ip -j link', async () => {
    await ctl('tenant', 'create', 'red');
    await ctl('network', 'create', 'red-100', '--tenant', 'red', '--physnet', 'lab', '--vlan', '100');
    const a = JSON.parse(await ctl('alloc', 'create', '--network', 'red-100', '--workload', 'cnf-1', '-o', 'json'));
    assert.equal(a.state, 'configured');
    assert.equal(a.vlan, 100);
    assert.equal(a.pf, pf);
    const vf = rawVfs(pf).find((v) => v.vf === a.vfIndex)!;
    assert.equal(vf.address, a.mac);
    assert.equal(vf.vlan_list?.[0]?.vlan, 100);
    assert.equal(vf.spoofchk, true);
    assert.equal(vf.trust, false);

    const released = JSON.parse(await ctl('alloc', 'delete', a.id, '-o', 'json'));
    assert.equal(released.state, 'released');
    const scrubbed = rawVfs(pf).find((v) => v.vf === a.vfIndex)!;
    assert.notEqual(scrubbed.address, a.mac);
    assert.equal(scrubbed.vlan_list?.[0]?.vlan ?? 0, 0);
  });
});
