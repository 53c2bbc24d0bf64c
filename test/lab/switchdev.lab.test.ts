// Lab suite (needs root and the SR-IOV lab, and netdevsim built by test/lab/netdevsim.sh): sriovd —
// controller and agent — on netdevsim, the kernel's devlink test driver: a policy switches the PF to
// switchdev, a tenant's bandwidth group becomes a devlink rate node, and the kernel's own
// `devlink -j port function rate show` is the judge.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sriovctl } from '../helpers/cli.js';
import { eventually } from '../helpers/daemon.js';
import { startLabDaemon, type LabDaemon } from './lab-daemon.js';
import { requireLab } from './lab-host.js';
import { delNsimDevice, newNsimDevice, type NsimDevice } from './netdevsim.js';

interface RawRate {
  type: string;
  tx_share?: number;
  tx_max?: number;
  parent?: string;
}

/** `devlink -j port function rate show`, as the kernel reports it (no vfleet code in between), for one device. */
function rawRates(handle: string): Map<string, RawRate> {
  const out = JSON.parse(execFileSync('devlink', ['-j', 'port', 'function', 'rate', 'show'], { encoding: 'utf8' })) as { rate?: Record<string, RawRate> };
  return new Map(Object.entries(out.rate ?? {}).filter(([k]) => k.startsWith(`${handle}/`)));
}

function rawMode(handle: string): string | undefined {
  const out = JSON.parse(execFileSync('devlink', ['-j', 'dev', 'eswitch', 'show', handle], { encoding: 'utf8' })) as { dev?: Record<string, { mode?: string }> };
  return out.dev?.[handle]?.mode;
}

const MBIT = 125_000; // devlink's JSON rates are bytes/s

describe('sriovd on netdevsim: switchdev by policy, a tenant group as a devlink rate node', () => {
  let lab: LabDaemon;
  let nsim: NsimDevice;
  let handle: string;
  const ctl = (...args: string[]) => lab.ctl(...args);
  const policy = async (mode: string) => {
    const file = join(lab.dir, `policy-${mode}.yaml`);
    await writeFile(file, `policies:\n  - name: nsim\n    selector: { pfNames: [${nsim.netdev}] }\n    numVfs: 4\n    eswitchMode: ${mode}\n    physnet: nsim\n`);
    await ctl('host', 'apply', '-f', file);
  };

  before(async () => {
    requireLab();
    nsim = await newNsimDevice(12, { maxVfs: 8 });
    // Up, as a PF carrying VFs is: its speed (netdevsim reports none; discovery takes the driver's 5000) needs a live link.
    execFileSync('ip', ['link', 'set', 'dev', nsim.netdev, 'up']);
    handle = `netdevsim/${nsim.device}`;
    lab = await startLabDaemon();
  });

  after(async () => {
    await lab?.close();
    if (nsim) delNsimDevice(nsim);
  });

  let ids: string[] = [];

  it('a policy switches the PF to switchdev with 4 VFs, and the inventory maps their representors', async () => {
    await policy('switchdev');
    await eventually('switchdev with 4 VF ports', 60_000, async () => (rawMode(handle) === 'switchdev' && rawRates(handle).size === 4 ? true : undefined));
    // pf show reads this host directly (local mode), as an operator on the node would.
    const local = await sriovctl(['pf', 'show', nsim.netdev, '-o', 'json'], {});
    assert.equal(local.code, 0, local.stderr);
    const pf = JSON.parse(local.stdout);
    assert.equal(pf.driver, 'netdevsim');
    assert.equal(pf.eswitchMode, 'switchdev');
    assert.deepEqual(
      pf.vfs.map((vf: { representor?: { devlinkPort: string } }) => vf.representor?.devlinkPort),
      [0, 1, 2, 3].map((n) => `${handle}/${128 + n}`),
    );
  });

  it('two allocations of a tenant with a group: the node and both leaves parented, with the right rates', async () => {
    await ctl('tenant', 'create', 'red');
    await ctl('tenant', 'set', 'red', '--pf-min-tx-rate', '200', '--pf-max-tx-rate', '1000');
    await ctl('network', 'create', 'red-100', '--tenant', 'red', '--physnet', 'nsim', '--vlan', '100', '--min-tx-rate', '50', '--max-tx-rate', '300');
    ids = [];
    for (const w of ['cnf-1', 'cnf-2']) ids.push(JSON.parse(await ctl('alloc', 'create', '--network', 'red-100', '--workload', w, '-o', 'json')).id);
    const allocs = await Promise.all(ids.map(async (id) => JSON.parse(await ctl('alloc', 'show', id, '-o', 'json'))));
    const leaves = allocs.map((a) => `${handle}/${128 + a.vfIndex}`);
    const rates = await eventually('the group node and its two leaves', 60_000, async () => {
      const r = rawRates(handle);
      return leaves.every((l) => r.get(l)?.parent === 'vfleet-red') ? r : undefined;
    });
    const node = rates.get(`${handle}/vfleet-red`)!;
    assert.equal(node.type, 'node');
    assert.equal(node.tx_share, 200 * MBIT);
    assert.equal(node.tx_max, 1000 * MBIT);
    for (const l of leaves) {
      assert.equal(rates.get(l)!.tx_share, 50 * MBIT);
      assert.equal(rates.get(l)!.tx_max, 300 * MBIT);
    }
  });

  it('a leaf un-parented by hand is parented again', async () => {
    assert.equal(ids.length, 2, 'the allocations of the previous test');
    const a = JSON.parse(await ctl('alloc', 'show', ids[0]!, '-o', 'json'));
    const leaf = `${handle}/${128 + a.vfIndex}`;
    execFileSync('devlink', ['port', 'function', 'rate', 'set', leaf, 'noparent']);
    assert.equal(rawRates(handle).get(leaf)?.parent, undefined);
    await eventually('the leaf parented again', 60_000, async () => (rawRates(handle).get(leaf)?.parent === 'vfleet-red' ? true : undefined));
  });

  it('releasing both allocations removes the node and clears the leaves', async () => {
    for (const id of ids) await ctl('alloc', 'delete', id);
    await eventually('no vfleet node, no parent, no rate', 60_000, async () => {
      const r = rawRates(handle);
      const clean = !r.has(`${handle}/vfleet-red`) && [...r.values()].every((x) => !x.parent && !x.tx_share && !x.tx_max);
      return clean ? true : undefined;
    });
  });

  it('a policy back to legacy restores the mode', async () => {
    await policy('legacy');
    await eventually('legacy mode', 60_000, async () => (rawMode(handle) === 'legacy' ? true : undefined));
  });
});
