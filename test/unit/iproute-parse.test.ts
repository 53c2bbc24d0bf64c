import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { IprouteLinkConfig, parseIpLinkJson, vfOpToBatchLine } from '../../src/host/linux/iproute.js';
import type { VfOp } from '../../src/host/ports.js';

const fixture = async (name: string): Promise<unknown> =>
  JSON.parse(await readFile(new URL(`../../../test/fixtures/ip/${name}`, import.meta.url), 'utf8'));

const isInvalid = (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT';

describe('parseIpLinkJson', () => {
  it('reads the PF and its VFs from real igb output', async () => {
    const facts = parseIpLinkJson(await fixture('igb-3vfs.json'));
    assert.equal(facts.mac, '52:54:00:5a:00:01');
    assert.equal(facts.mtu, 1500);
    assert.equal(facts.operState, 'down');
    assert.deepEqual(facts.vfs.map((v) => v.index), [0, 1, 2]);
    assert.deepEqual(facts.vfs[0], {
      index: 0,
      mac: '02:00:00:00:00:01',
      vlan: 100,
      qos: 3,
      vlanProto: '802.1Q',
      minTxRateMbps: 0,
      maxTxRateMbps: 0,
      spoofChk: true,
      trust: false,
      linkState: 'auto',
    });
    // `vlan_list: [{}]`: iproute2 omits zero fields.
    assert.equal(facts.vfs[1]?.vlan, 0);
    assert.equal(facts.vfs[1]?.qos, 0);
    assert.equal(facts.vfs[1]?.mac, '00:00:00:00:00:00');
    assert.equal(facts.vfs[1]?.stats, undefined);
  });

  it('reads per-VF stats from `-s` output', async () => {
    const facts = parseIpLinkJson(await fixture('igb-3vfs-stats.json'));
    assert.equal(facts.vfs.length, 3);
    for (const vf of facts.vfs) {
      assert.deepEqual(vf.stats, { rxBytes: 0, rxPackets: 0, rxDropped: 0, txBytes: 0, txPackets: 0, txDropped: 0 });
    }
  });

  it('maps every field, old and new spellings', () => {
    const facts = parseIpLinkJson([
      {
        address: '52:54:00:AA:BB:CC',
        mtu: 9000,
        operstate: 'UP',
        vfinfo_list: [
          {
            vf: 7,
            address: '02:AB:00:00:00:07',
            vlan_list: [{ vlan: 42, protocol: '802.1ad' }],
            rate: { max_tx: 500, min_tx: 100 },
            link_state: 'disable',
            stats: {
              rx: { bytes: 1000, packets: 10, dropped: 1 },
              tx: { tx_bytes: 2000, tx_packets: 20, dropped: 2 },
            },
          },
          // iproute2 before vlan_list/rate: fields on the entry; tx counters as bytes/packets.
          { vf: 8, address: '02:00:00:00:00:08', vlan: 5, qos: 1, tx_rate: 300, spoofchk: false, trust: true,
            stats: { rx: {}, tx: { bytes: 3, packets: 4 } } },
        ],
      },
    ]);
    assert.equal(facts.operState, 'up');
    assert.equal(facts.mac, '52:54:00:aa:bb:cc');
    const [a, b] = facts.vfs;
    assert.deepEqual(
      { ...a },
      {
        index: 7,
        mac: '02:ab:00:00:00:07',
        vlan: 42,
        qos: 0,
        vlanProto: '802.1ad',
        minTxRateMbps: 100,
        maxTxRateMbps: 500,
        spoofChk: null,
        trust: null,
        linkState: 'disable',
        stats: { rxBytes: 1000, rxPackets: 10, rxDropped: 1, txBytes: 2000, txPackets: 20, txDropped: 2 },
      },
    );
    assert.equal(b?.vlan, 5);
    assert.equal(b?.qos, 1);
    assert.equal(b?.maxTxRateMbps, 300);
    assert.equal(b?.spoofChk, false);
    assert.equal(b?.trust, true);
    assert.deepEqual(b?.stats, { rxBytes: 0, rxPackets: 0, rxDropped: 0, txBytes: 3, txPackets: 4, txDropped: 0 });
  });

  it('gives unknown operstate, and no VFs without vfinfo_list', () => {
    const facts = parseIpLinkJson([{ ifname: 'lo', operstate: 'UNKNOWN', mtu: 65536 }]);
    assert.equal(facts.operState, 'unknown');
    assert.deepEqual(facts.vfs, []);
  });

  it('refuses output without a link', () => {
    assert.throws(() => parseIpLinkJson([]), { name: 'KernelError' });
  });
});

describe('vfOpToBatchLine', () => {
  const cases: Array<[VfOp, string]> = [
    [{ vf: 3, field: 'mac', mac: '02:AA:bb:00:00:01' }, 'link set dev eth0 vf 3 mac 02:aa:bb:00:00:01'],
    [{ vf: 3, field: 'mac', mac: '00:00:00:00:00:00' }, 'link set dev eth0 vf 3 mac 00:00:00:00:00:00'],
    [{ vf: 3, field: 'vlan', vlan: 100, qos: 3, vlanProto: '802.1Q' }, 'link set dev eth0 vf 3 vlan 100 qos 3 proto 802.1Q'],
    [{ vf: 3, field: 'vlan', vlan: 0, qos: 0, vlanProto: '802.1ad' }, 'link set dev eth0 vf 3 vlan 0 qos 0 proto 802.1ad'],
    [{ vf: 3, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: 100 }, 'link set dev eth0 vf 3 min_tx_rate 0 max_tx_rate 100'],
    [{ vf: 3, field: 'spoofChk', on: true }, 'link set dev eth0 vf 3 spoofchk on'],
    [{ vf: 3, field: 'trust', on: false }, 'link set dev eth0 vf 3 trust off'],
    [{ vf: 3, field: 'linkState', state: 'enable' }, 'link set dev eth0 vf 3 state enable'],
  ];
  for (const [op, line] of cases) {
    it(`${op.field} → ${line}`, () => assert.equal(vfOpToBatchLine('eth0', op), line));
  }

  it('rejects bad values, which could otherwise inject words into the batch', () => {
    const bad: unknown[] = [
      { vf: 3, field: 'mac', mac: '01:00:5e:00:00:01' }, // multicast
      { vf: 3, field: 'mac', mac: '02:00:00:00:00:01 trust on' },
      { vf: 3, field: 'vlan', vlan: 4095, qos: 0, vlanProto: '802.1Q' },
      { vf: 3, field: 'vlan', vlan: 10, qos: 8, vlanProto: '802.1Q' },
      { vf: 3, field: 'vlan', vlan: 10, qos: 0, vlanProto: '802.1x' },
      { vf: 3, field: 'rate', minTxRateMbps: -1, maxTxRateMbps: 0 },
      { vf: 3, field: 'rate', minTxRateMbps: 0, maxTxRateMbps: 1.5 },
      { vf: 3, field: 'spoofChk', on: 'on' },
      { vf: 3, field: 'linkState', state: 'up' },
      { vf: -1, field: 'trust', on: true },
      { vf: 3, field: 'query_rss', on: true },
    ];
    for (const op of bad) assert.throws(() => vfOpToBatchLine('eth0', op as VfOp), isInvalid, JSON.stringify(op));
    const ok: VfOp = { vf: 0, field: 'trust', on: true };
    for (const pf of ['eth0 vf 1', 'eth0\nlink del eth1', '../eth0', '']) {
      assert.throws(() => vfOpToBatchLine(pf, ok), isInvalid, JSON.stringify(pf));
    }
  });
});

describe('IprouteLinkConfig.applyVfOps with a stand-in ip', () => {
  let dir: string;
  const fakeIp = async (name: string, script: string) => {
    const path = join(dir, name);
    await writeFile(path, `#!/bin/sh\ncat > "${path}.stdin"\n${script}\n`);
    await chmod(path, 0o755);
    return path;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-ip-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const ops: VfOp[] = [
    { vf: 2, field: 'mac', mac: '02:00:00:00:00:02' },
    { vf: 2, field: 'linkState', state: 'enable' },
    { vf: 2, field: 'trust', on: true },
  ];

  it('feeds one line per op to `ip -batch -` and reports the failing line', async () => {
    // What igb's ip printed in the lab for exactly this batch.
    const ip = await fakeIp('ip-fail', `echo "$@" > "$0.args"
echo 'RTNETLINK answers: Operation not supported' >&2
echo 'Command failed -:2' >&2
exit 1`);
    const res = await new IprouteLinkConfig(ip).applyVfOps('eth0', ops);
    assert.deepEqual(res, {
      ok: false,
      failedAt: 1,
      errno: 'EOPNOTSUPP',
      message: 'RTNETLINK answers: Operation not supported\nCommand failed -:2',
    });
    assert.equal((await readFile(`${ip}.args`, 'utf8')).trim(), '-batch -');
    assert.equal(
      await readFile(`${ip}.stdin`, 'utf8'),
      'link set dev eth0 vf 2 mac 02:00:00:00:00:02\nlink set dev eth0 vf 2 state enable\nlink set dev eth0 vf 2 trust on\n',
    );
  });

  it('succeeds on exit 0', async () => {
    const ip = await fakeIp('ip-ok', 'exit 0');
    assert.deepEqual(await new IprouteLinkConfig(ip).applyVfOps('eth0', ops), { ok: true });
  });

  it('with readBack, shows the PF in the same run and parses what it printed', async () => {
    // Set lines print nothing under -j; the show line prints its one-link array.
    const ip = await fakeIp('ip-readback', `echo "$@" > "$0.args"
echo '[{"ifname":"eth0","mtu":1500,"operstate":"UP","address":"02:00:00:00:00:aa","vfinfo_list":[{"vf":2,"address":"02:00:00:00:00:02","trust":true,"link_state":"enable"}]}]'`);
    const res = await new IprouteLinkConfig(ip).applyVfOps('eth0', ops, { readBack: true });
    assert.equal((await readFile(`${ip}.args`, 'utf8')).trim(), '-j -d -batch -');
    assert.match(await readFile(`${ip}.stdin`, 'utf8'), /vf 2 trust on\nlink show dev eth0\n$/);
    assert.ok(res.ok && res.after, 'read back');
    assert.deepEqual([res.after.mtu, res.after.vfs[0]?.mac, res.after.vfs[0]?.trust, res.after.vfs[0]?.linkState], [1500, '02:00:00:00:00:02', true, 'enable']);
  });

  it('with readBack, output framed otherwise gives no read-back (the caller shows the PF itself), not a failure', async () => {
    const ip = await fakeIp('ip-framed', `echo '[[{"ifname":"eth0"}]'`);
    assert.deepEqual(await new IprouteLinkConfig(ip).applyVfOps('eth0', ops, { readBack: true }), { ok: true });
  });

  it('validates every op before running anything', async () => {
    const ip = await fakeIp('ip-never', 'exit 0');
    const bad = [...ops, { vf: 2, field: 'vlan', vlan: 5000, qos: 0, vlanProto: '802.1Q' } as VfOp];
    await assert.rejects(new IprouteLinkConfig(ip).applyVfOps('eth0', bad), isInvalid);
    await assert.rejects(readFile(`${ip}.stdin`), { code: 'ENOENT' });
  });
});
