// sriovctl pf show, local mode on a simulated mlx5 host: representors, rate parents and rate nodes in switchdev.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PfInfo } from '../../src/host/model.js';
import { createSimPorts } from '../../src/sim/sim-host.js';
import { sriovctl } from '../helpers/cli.js';

let dir: string;
let env: NodeJS.ProcessEnv;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vfleet-cli-pf-show-'));
  env = { HOME: dir, SRIOV_SERVER: '', SRIOV_TOKEN: '', SRIOV_CONFIG: '' };
});
after(() => rm(dir, { recursive: true, force: true }));

async function ok(file: string, args: string[]): Promise<string> {
  const r = await sriovctl(['--host', `sim:${file}`, ...args], env);
  assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('sriovctl pf show', () => {
  it('in legacy mode: the PF and its VFs, no representor or rate columns', async () => {
    const file = join(dir, 'legacy.json');
    assert.equal((await sriovctl(['sim', 'init', file, '--profile', 'mlx5', '--pfs', '1'], env)).code, 0);
    await ok(file, ['pf', 'set', 'ens1f0', '--num-vfs', '2']);
    const out = await ok(file, ['pf', 'show', 'ens1f0']);
    assert.match(out, /ens1f0 VFs/);
    assert.doesNotMatch(out, /REPRESENTOR|RATE PARENT|rate nodes/);
    const json = JSON.parse(await ok(file, ['pf', 'show', '0000:3b:00.0', '-o', 'json'])) as PfInfo;
    assert.equal(json.eswitchMode, 'legacy');
    assert.equal(json.vfs[0]!.representor, undefined);
  });

  it('in switchdev mode: each VF with its representor and rate parent, and the rate nodes', async () => {
    const file = join(dir, 'switchdev.json');
    assert.equal((await sriovctl(['sim', 'init', file, '--profile', 'mlx5', '--pfs', '1'], env)).code, 0);
    const ports = createSimPorts(file);
    const [pf] = await ports.sysfs.listSriovPfs();
    await ports.sysfs.writeAutoprobe(pf!, false);
    await ports.sysfs.writeNumVfs(pf!, 2);
    await ports.devlink.setEswitchMode(pf!, 'switchdev');
    await ports.devlink.addRateNode(pf!, 'vfleet-acme', { txShareMbps: 1000, txMaxMbps: 4000 });
    await ports.devlink.setRate(`pci/${pf}/129`, { txShareMbps: 100, txMaxMbps: 900, parent: 'vfleet-acme' });
    const out = await ok(file, ['pf', 'show', 'ens1f0']);
    const lines = out.split('\n');
    assert.match(lines.find((l) => l.startsWith('VF '))!, /REPRESENTOR +DEVLINK PORT +RATE PARENT/);
    assert.match(lines.find((l) => l.startsWith('1 '))!, /100\/900 .* ens1f0r1 +pci\/0000:3b:00\.0\/129 +vfleet-acme/);
    assert.match(lines.find((l) => l.startsWith('0 '))!, /ens1f0r0 +pci\/0000:3b:00\.0\/128 +-/);
    assert.match(out, /ens1f0 rate nodes\nNODE +TX_SHARE MBPS +TX_MAX MBPS +PARENT\nvfleet-acme +1000 +4000 +-/);
    const json = JSON.parse(await ok(file, ['pf', 'show', 'ens1f0', '-o', 'json'])) as PfInfo;
    assert.deepEqual(json.vfs[1]!.representor, { netdev: 'ens1f0r1', devlinkPort: `pci/${pf}/129` });
    assert.deepEqual(json.rateNodes, [{ name: 'vfleet-acme', txShareMbps: 1000, txMaxMbps: 4000, parent: null }]);
  });

  it('an unknown PF exits non-zero naming it', async () => {
    const file = join(dir, 'legacy.json');
    const r = await sriovctl(['--host', `sim:${file}`, 'pf', 'show', 'ens9f9'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ens9f9/);
  });
});
