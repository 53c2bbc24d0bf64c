// `sriovd --device-plugin FILE` and `sriovd agent --device-plugin FILE`: a refused pool file starts nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SRIOVD } from '../helpers/daemon.js';

function sriovd(args: string[], cwd: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SRIOVD, ...args], { cwd, timeout: 60_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr });
    });
  });
}

describe('sriovd --device-plugin', { timeout: 120_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-daemon-pools-'));
    await writeFile(join(dir, 'pools.yaml'), 'pools:\n  - name: red\n    network: red\n  - name: blue\n    network: blue\n    pfNames: ["ens1f0#7-3"]\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('refuses a malformed pool file with its line and reason, exit 2, before creating anything', async () => {
    const { code, stderr } = await sriovd(['--device-plugin', 'pools.yaml', '--data-dir', 'data', '--kubelet-dir', 'kubelet'], dir);
    assert.equal(code, 2);
    assert.match(stderr, /^sriovd: INVALID_ARGUMENT: pools\.yaml:6: pools\[1\]\.pfNames\[0\]: "ens1f0#7-3" is not a VF range/);
    assert.deepEqual(await readdir(dir), ['pools.yaml']);
  });

  it('the agent refuses it the same way, before asking for a token', async () => {
    const { code, stderr } = await sriovd(['agent', '--server', 'http://198.18.0.1:1', '--device-plugin', 'pools.yaml'], dir);
    assert.equal(code, 2);
    assert.match(stderr, /pools\.yaml:6: pools\[1\]\.pfNames\[0\]/);
  });

  it('refuses a --kubelet-dir that is a file, not a directory, before creating anything (it would wait for a kubelet for ever)', async () => {
    await writeFile(join(dir, 'ok.yaml'), 'pools:\n  - name: red\n    network: red\n');
    const { code, stderr } = await sriovd(['--device-plugin', 'ok.yaml', '--data-dir', 'data', '--kubelet-dir', 'ok.yaml', '--host', 'auto'], dir);
    assert.equal(code, 2);
    assert.match(stderr, /^sriovd: INVALID_ARGUMENT: --kubelet-dir "ok\.yaml" is not a directory/);
    assert.deepEqual((await readdir(dir)).sort(), ['ok.yaml', 'pools.yaml']);
    const agent = await sriovd(['agent', '--server', 'http://198.18.0.1:1', '--device-plugin', 'ok.yaml', '--kubelet-dir', 'ok.yaml'], dir);
    assert.equal(agent.code, 2);
    assert.match(agent.stderr, /--kubelet-dir "ok\.yaml" is not a directory/);
  });

  it('a missing pool file is named', async () => {
    const { code, stderr } = await sriovd(['--device-plugin', 'nope.yaml', '--data-dir', 'data'], dir);
    assert.equal(code, 2);
    assert.match(stderr, /cannot read the pool file "nope\.yaml": ENOENT/);
  });
});
