import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { parsePolicyFile } from '../../src/policy/schema.js';
import { fleetLayout, fleetPolicy } from '../../src/sim/fleet-layout.js';
import { simProfile } from '../../src/sim/profiles.js';
import { parseServers } from '../../src/agent/servers.js';

const base = { hosts: 12, profile: 'mix', pfs: 4, vfsPerPf: 64, prefix: 'fleet' };

function refusal(fn: () => unknown): SriovError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SriovError, String(e));
    return e;
  }
  assert.fail('expected a refusal');
}

describe('fleet layout', () => {
  it('mixes every profile that holds the VFs asked for, on one and on two NUMA nodes', () => {
    const hosts = fleetLayout(base);
    assert.equal(hosts.length, 12);
    const profiles = new Set(hosts.map((h) => h.profile));
    assert.deepEqual([...profiles].sort(), ['bnxt', 'i40e', 'ice'], 'igb (7), ixgbe (63) and mlx5 (16) cannot hold 64 VFs');
    for (const p of profiles) assert.ok(simProfile(p).totalVfs >= 64);
    assert.deepEqual(new Set(hosts.map((h) => h.numaNodes)), new Set([1, 2]));
    assert.ok(hosts.every((h) => h.pfs === 4 && h.vfsPerPf === 64));
  });

  it('names hosts <prefix>-<n> from 1, zero-padded to the widest, all different', () => {
    const hosts = fleetLayout({ ...base, hosts: 100 });
    assert.equal(hosts[0]!.name, 'fleet-001');
    assert.equal(hosts[99]!.name, 'fleet-100');
    assert.equal(new Set(hosts.map((h) => h.name)).size, 100);
  });

  it('gives the same fleet for the same options', () => {
    assert.deepEqual(fleetLayout(base), fleetLayout(base));
  });

  it('with small VF counts the mix takes in every profile', () => {
    const hosts = fleetLayout({ ...base, hosts: 24, vfsPerPf: 4 });
    assert.equal(new Set(hosts.map((h) => h.profile)).size, 6);
  });

  it('one profile: that profile on every host, on at most as many nodes as PFs', () => {
    const hosts = fleetLayout({ ...base, profile: 'ice', pfs: 1, vfsPerPf: 256 });
    assert.ok(hosts.every((h) => h.profile === 'ice' && h.numaNodes === 1));
  });

  it('refuses what cannot be, naming the option', () => {
    assert.match(refusal(() => fleetLayout({ ...base, hosts: 0 })).message, /--hosts/);
    assert.match(refusal(() => fleetLayout({ ...base, hosts: 1.5 })).message, /--hosts/);
    assert.match(refusal(() => fleetLayout({ ...base, pfs: 65 })).message, /--pfs/);
    assert.match(refusal(() => fleetLayout({ ...base, vfsPerPf: 257 })).message, /--vfs-per-pf/);
    assert.match(refusal(() => fleetLayout({ ...base, profile: 'igb', vfsPerPf: 8 })).message, /--vfs-per-pf 8 is above igb's 7/);
    assert.match(refusal(() => fleetLayout({ ...base, profile: 'e1000' })).message, /--profile "e1000"/);
    assert.match(refusal(() => fleetLayout({ ...base, prefix: 'Bad_Name' })).message, /--prefix/);
  });

  it("each host's policy is valid and asks its own driver for the VFs", () => {
    for (const host of fleetLayout({ ...base, hosts: 3 })) {
      const [policy] = parsePolicyFile(fleetPolicy(host, 'fleet'));
      assert.equal(policy!.numVfs, 64);
      assert.equal(policy!.physnet, 'fleet');
      assert.deepEqual(policy!.selector.drivers, [simProfile(host.profile).pfDriver]);
    }
  });
});

describe('fleet-sim --server', () => {
  it('takes several controller URLs', () => {
    assert.deepEqual(parseServers('http://198.18.0.1:7474, https://198.18.0.2:7474'), ['http://198.18.0.1:7474', 'https://198.18.0.2:7474']);
  });

  it('refuses what is not an http(s) URL, naming it', () => {
    assert.match(refusal(() => parseServers('')).message, /is empty/);
    assert.match(refusal(() => parseServers('198.18.0.1:7474')).message, /not http: or https:|not a URL/);
    assert.match(refusal(() => parseServers('http://198.18.0.1:7474,ftp://198.18.0.2')).message, /ftp:/);
  });
});
