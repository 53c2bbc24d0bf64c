// The devlink tool's answers, captured from netdevsim in the lab
// (test/lab/capture-devlink.sh into test/fixtures/devlink/), parsed; and
// LinuxDevlink's commands, run against a stand-in `devlink` that records them.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { LinuxDevlink } from '../../src/host/linux/devlink.js';
import {
  devlinkError,
  mbpsOfBytesPerSecond,
  parseDevlinkError,
  parseEswitchMode,
  parsePorts,
  parseRateObject,
  parseRates,
} from '../../src/host/linux/devlink-output.js';
import { KernelError } from '../../src/host/ports.js';

const FIXTURES = new URL('../../../test/fixtures/devlink', import.meta.url).pathname;
const json = async (name: string): Promise<unknown> => JSON.parse(await readFile(join(FIXTURES, `${name}.json`), 'utf8'));
const stderr = (name: string) => readFile(join(FIXTURES, `${name}.err`), 'utf8');
const NSIM = 'netdevsim/netdevsim10';

const isInvalid = (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT';
const isKernel = (errno: string, text?: string) => (e: unknown) =>
  e instanceof KernelError && e.errno === errno && (text === undefined || e.message.includes(text));

describe('devlink output (captured from netdevsim 6.1)', () => {
  it('maps the ports of a switchdev device: the uplink and one pcivf representor per VF', async () => {
    const ports = parsePorts(await json('port-show-switchdev'), NSIM);
    assert.deepEqual(ports, [
      { port: `${NSIM}/0`, flavour: 'physical', netdev: 'eth1', pfnum: null, vfnum: null },
      { port: `${NSIM}/128`, flavour: 'pcivf', netdev: 'eth2', pfnum: 0, vfnum: 0 },
      { port: `${NSIM}/129`, flavour: 'pcivf', netdev: 'eth3', pfnum: 0, vfnum: 1 },
      { port: `${NSIM}/130`, flavour: 'pcivf', netdev: 'eth4', pfnum: 0, vfnum: 2 },
      { port: `${NSIM}/131`, flavour: 'pcivf', netdev: 'eth5', pfnum: 0, vfnum: 3 },
    ]);
    assert.deepEqual(parsePorts(await json('port-show-legacy'), NSIM).map((p) => p.flavour), ['physical']);
  });

  it("keeps only the asked device's ports and rates (the dump lists every device's)", async () => {
    assert.deepEqual(parsePorts(await json('port-show-switchdev'), 'netdevsim/netdevsim1'), [], 'netdevsim1 is not a prefix of netdevsim10');
    assert.deepEqual(parseRates(await json('rate-show-tree'), 'netdevsim/netdevsim1'), []);
    assert.deepEqual(parsePorts(await json('port-show-switchdev'), 'pci/0000:3b:00.0'), []);
  });

  it('reads rates in bytes/s as whole Mbit/s: nodes, leaves, parents; unset is 0', async () => {
    assert.deepEqual(parseRates(await json('rate-show-tree'), NSIM), [
      { object: `${NSIM}/vfleet-beta`, type: 'node', txShareMbps: 0, txMaxMbps: 0, parent: 'vfleet-acme' },
      { object: `${NSIM}/vfleet-acme`, type: 'node', txShareMbps: 100, txMaxMbps: 200, parent: null },
      { object: `${NSIM}/128`, type: 'leaf', txShareMbps: 10, txMaxMbps: 50, parent: 'vfleet-acme' },
      { object: `${NSIM}/129`, type: 'leaf', txShareMbps: 0, txMaxMbps: 0, parent: 'vfleet-acme' },
      { object: `${NSIM}/130`, type: 'leaf', txShareMbps: 0, txMaxMbps: 0, parent: null },
      { object: `${NSIM}/131`, type: 'leaf', txShareMbps: 0, txMaxMbps: 0, parent: null },
    ]);
    // `tx_share 1000kbit` is 125000 bytes/s: exactly 1 Mbit/s.
    assert.deepEqual(parseRates(await json('rate-show-kbit'), NSIM)[0], { object: `${NSIM}/131`, type: 'leaf', txShareMbps: 1, txMaxMbps: 0, parent: null });
    assert.deepEqual(parseRates(await json('rate-show-legacy-vfs'), NSIM), [], 'legacy mode: no rate objects');
  });

  it('refuses a rate that is not a whole Mbit/s rather than round it', () => {
    assert.equal(mbpsOfBytesPerSecond(12_500_000, 'tx_max', 'x'), 100);
    // 1.5 Mbit/s, as `tx_max 1500kbit` would be on a driver that took it.
    assert.throws(() => mbpsOfBytesPerSecond(187_500, 'tx_max', `${NSIM}/128`), isKernel('ERANGE', '187500 bytes/s'));
    assert.throws(() => mbpsOfBytesPerSecond(-125_000, 'tx_max', 'x'), isKernel('ERANGE'));
    assert.throws(() => mbpsOfBytesPerSecond('100', 'tx_max', 'x'), isKernel('ERANGE'));
    assert.throws(() => parseRates({ rate: { [`${NSIM}/128`]: { type: 'leaf', tx_share: 1 } } }, NSIM), isKernel('ERANGE', 'tx_share'));
  });

  it('reads the eswitch mode', async () => {
    assert.equal(parseEswitchMode(await json('eswitch-show-legacy'), NSIM), 'legacy');
    assert.equal(parseEswitchMode(await json('eswitch-show-switchdev'), NSIM), 'switchdev');
    assert.equal(parseEswitchMode(await json('eswitch-show-missing-dev'), 'netdevsim/netdevsim99'), null);
  });

  it('refuses output that is not what devlink prints', () => {
    assert.throws(() => parsePorts({}, NSIM), isKernel('EPROTO'));
    assert.throws(() => parseRates([], NSIM), isKernel('EPROTO'));
  });

  it("turns the kernel's refusals into errno names, keeping the extack message", async () => {
    const cases: Array<[string, string, string | null]> = [
      ['rate-del-with-children', 'EBUSY', 'leftover: Node has children. Cannot delete node.'],
      ['rate-set-loop', 'EEXIST', 'leftover: Node is already a parent of parent node.'],
      ['rate-add-legacy', 'EOPNOTSUPP', 'netdevsim: Node creation allowed only in switchdev mode.'],
      ['eswitch-legacy-with-nodes', 'EBUSY', 'leftover: Rate node(s) exists.'],
      ['rate-add-node-again', 'EEXIST', null],
      ['rate-set-parent-missing', 'ENODEV', null],
      ['rate-del-missing', 'ENODEV', null],
      ['rate-set-kbit', 'EINVAL', 'netdevsim: TX rate value not in link speed units of 1Mbps.'],
      ['eswitch-set-missing-dev', 'ENODEV', null],
      // devlink's own refusal, before it asks the kernel
      ['rate-del-leaf', 'EINVAL', 'Node name cannot be a devlink port index or empty.'],
      ['rate-set-share-above-max', 'EINVAL', 'Invalid. Expected tx_share <= tx_max or tx_share == 0.'],
    ];
    for (const [name, errno, extack] of cases) {
      assert.deepEqual(parseDevlinkError(await stderr(name)), { errno, extack }, name);
    }
    assert.equal(parseDevlinkError('kernel answers: No such file or directory').errno, 'ENOENT');
    assert.equal(parseDevlinkError('kernel answers: Something new').errno, 'EIO');
    const err = devlinkError(`devlink port function rate del ${NSIM}/vfleet-acme`, await stderr('rate-del-with-children'), 1);
    assert.equal(err.message, `devlink port function rate del ${NSIM}/vfleet-acme: Device or resource busy (leftover: Node has children. Cannot delete node.)`);
  });

  it('checks a rate object part by part, and returns it canonical', () => {
    assert.deepEqual(parseRateObject(`${NSIM}/128`), { object: `${NSIM}/128`, device: 'netdevsim10', name: '128', leaf: true });
    assert.deepEqual(parseRateObject('pci/3B:00.0/vfleet-acme'), { object: 'pci/0000:3b:00.0/vfleet-acme', device: '0000:3b:00.0', name: 'vfleet-acme', leaf: false });
    for (const bad of [`${NSIM}/../x`, `${NSIM}`, `${NSIM}/a b`, 'pci/0000:3b:00.0/1/2', 'netdevsim/eth0/1', 'usb/1-1/3', `${NSIM}/-x`, `${NSIM}/99999999999`, '']) {
      assert.throws(() => parseRateObject(bad), isInvalid, bad);
    }
  });
});

describe('LinuxDevlink, against a stand-in devlink', () => {
  let dir: string;
  let devlink: LinuxDevlink;
  const log = () => join(dir, 'args');
  /** The stand-in prints `out` and `err` (files) and exits `code`; it appends its arguments to `args`. */
  async function answer(out: string, err = '', code = 0): Promise<void> {
    await writeFile(join(dir, 'out'), out);
    await writeFile(join(dir, 'err'), err);
    await writeFile(join(dir, 'code'), String(code));
  }
  const calls = async () => (await readFile(log(), 'utf8').catch(() => '')).split('\n').filter(Boolean);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-devlink-'));
    const bin = join(dir, 'devlink');
    await writeFile(
      bin,
      `#!/bin/sh\nd=$(dirname "$0")\necho "$*" >>"$d/args"\ncat "$d/out"\ncat "$d/err" >&2\nexit $(cat "$d/code")\n`,
    );
    await chmod(bin, 0o755);
    devlink = new LinuxDevlink(bin);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const fresh = async () => {
    await rm(log(), { force: true });
    await answer('');
  };

  it('sets the eswitch mode on the device handle', async () => {
    await fresh();
    await devlink.setEswitchMode('netdevsim10', 'switchdev');
    await devlink.setEswitchMode('0000:3b:00.0', 'legacy');
    assert.deepEqual(await calls(), [`dev eswitch set ${NSIM} mode switchdev`, 'dev eswitch set pci/0000:3b:00.0 mode legacy']);
  });

  it('adds, sets and deletes rate objects with whole-Mbit arguments', async () => {
    await fresh();
    await devlink.addRateNode('netdevsim10', 'vfleet-acme', { txShareMbps: 100, txMaxMbps: 0 });
    await devlink.setRate(`${NSIM}/128`, { txShareMbps: 10, txMaxMbps: 50, parent: 'vfleet-acme' });
    await devlink.setRate(`${NSIM}/128`, { parent: null });
    await devlink.setRate(`${NSIM}/vfleet-acme`, { txMaxMbps: 400 });
    await devlink.setRate(`${NSIM}/129`, { txShareMbps: 20, txMaxMbps: 10, parent: null });
    await devlink.addRateNode('netdevsim10', 'vfleet-beta', { txShareMbps: 0, txMaxMbps: 0 });
    await devlink.setRate(`${NSIM}/128`, {}); // nothing to change: no command
    await devlink.deleteRateNode('netdevsim10', 'vfleet-acme');
    assert.deepEqual(await calls(), [
      `port function rate add ${NSIM}/vfleet-acme tx_share 100mbit tx_max 0mbit`,
      `port function rate set ${NSIM}/128 tx_share 10mbit tx_max 50mbit parent vfleet-acme`,
      `port function rate set ${NSIM}/128 noparent`,
      `port function rate set ${NSIM}/vfleet-acme tx_max 400mbit`,
      `port function rate set ${NSIM}/129 tx_share 20mbit tx_max 10mbit noparent`,
      `port function rate add ${NSIM}/vfleet-beta tx_share 0mbit tx_max 0mbit`,
      `port function rate del ${NSIM}/vfleet-acme`,
    ]);
  });

  it('refuses bad names, objects and rates before running anything', async () => {
    await fresh();
    await assert.rejects(devlink.addRateNode('netdevsim10', '128', { txShareMbps: 0, txMaxMbps: 0 }), isInvalid);
    await assert.rejects(devlink.addRateNode('netdevsim10', 'a/b', { txShareMbps: 0, txMaxMbps: 0 }), isInvalid);
    await assert.rejects(devlink.addRateNode('eth0', 'vfleet-a', { txShareMbps: 0, txMaxMbps: 0 }), isInvalid);
    await assert.rejects(devlink.addRateNode('netdevsim10', 'vfleet-a', { txShareMbps: 1.5, txMaxMbps: 0 }), isInvalid);
    await assert.rejects(devlink.setRate(`${NSIM}/128`, { txMaxMbps: -1 }), isInvalid);
    await assert.rejects(devlink.setRate(`${NSIM}/128`, { parent: '--help' }), isInvalid);
    await assert.rejects(devlink.setRate(`${NSIM}/../128`, { parent: null }), isInvalid);
    await assert.rejects(devlink.deleteRateNode('netdevsim10', '130'), isInvalid);
    await assert.rejects(devlink.setEswitchMode('netdevsim10', 'offload' as 'legacy'), isInvalid);
    assert.deepEqual(await calls(), []);
  });

  it("reports the kernel's refusal with its errno and extack", async () => {
    await fresh();
    await answer('', await stderr('rate-del-with-children'), 1);
    await assert.rejects(devlink.deleteRateNode('netdevsim10', 'vfleet-acme'), isKernel('EBUSY', 'Node has children'));
    await answer('', await stderr('eswitch-legacy-with-nodes'), 1);
    await assert.rejects(devlink.setEswitchMode('netdevsim10', 'legacy'), isKernel('EBUSY', 'Rate node(s) exists.'));
  });

  it('reads ports, rates and the mode of one device', async () => {
    await fresh();
    await answer(await readFile(join(FIXTURES, 'port-show-switchdev.json'), 'utf8'));
    assert.equal((await devlink.ports('netdevsim10')).length, 5);
    await answer(await readFile(join(FIXTURES, 'rate-show-tree.json'), 'utf8'));
    assert.equal((await devlink.rates('netdevsim10')).length, 6);
    await answer(await readFile(join(FIXTURES, 'eswitch-show-switchdev.json'), 'utf8'));
    assert.equal(await devlink.eswitchMode('netdevsim10'), 'switchdev');
    await answer('{"dev":{}}', 'kernel answers: No such device\n', 1);
    assert.equal(await devlink.eswitchMode('netdevsim99'), null);
    assert.deepEqual(await calls(), ['-j port show', '-j port function rate show', `-j dev eswitch show ${NSIM}`, '-j dev eswitch show netdevsim/netdevsim99']);
  });

  it('a kernel without devlink rate has no rate objects; other failures are errors', async () => {
    await fresh();
    await answer('', 'kernel answers: Operation not supported\n', 1);
    assert.deepEqual(await devlink.rates('netdevsim10'), []);
    await answer('', 'kernel answers: Device or resource busy\n', 1);
    await assert.rejects(devlink.rates('netdevsim10'), isKernel('EBUSY'));
    await answer('not json');
    await assert.rejects(devlink.ports('netdevsim10'), isKernel('EPROTO'));
    await assert.rejects(new LinuxDevlink(join(dir, 'no-such-devlink')).ports('netdevsim10'), isKernel('ENOENT', 'iproute2'));
  });
});
