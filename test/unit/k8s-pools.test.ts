// The device plugin's pool file: what it accepts, the names it derives, and every refusal with its line.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPoolsOnHost, envWord, parsePfName, parsePoolDocument, readPoolFile } from '../../src/k8s/pools.js';

const parse = (yaml: string) => parsePoolDocument(yaml, 'pools.yaml');

/** Asserts the file is refused as INVALID_ARGUMENT with a message matching `re` (which names the line). */
function refused(yaml: string, re: RegExp): void {
  assert.throws(
    () => parse(yaml),
    (err: unknown) => {
      assert.ok(err instanceof SriovError, String(err));
      assert.equal(err.code, 'INVALID_ARGUMENT');
      assert.equal(err.exitCode, 2);
      assert.match(err.message, re);
      return true;
    },
  );
}

const two = (a: string, b: string) => `pools:\n  - name: red\n    network: red\n${a}  - name: blue\n    network: blue\n${b}`;

describe('pool file: accepted', () => {
  it('the smallest file gives vfleet.io/<pool> with the defaults', () => {
    const c = parse('pools:\n  - name: red\n    network: red\n');
    assert.equal(c.resourcePrefix, 'vfleet.io');
    assert.equal(c.bandwidthUnitMbps, 100);
    const [p] = c.pools;
    assert.equal(p!.resourceName, 'vfleet.io/red');
    assert.equal(p!.bandwidthResourceName, 'vfleet.io/red-bw');
    assert.equal(p!.placement, 'pack');
    assert.equal(p!.redundancy, false);
    assert.equal(p!.deviceType, undefined);
  });

  it('takes every selector, a prefix, a unit and hyphens in names', () => {
    const c = parse(
      [
        'resourcePrefix: nfv.example.com',
        'bandwidthUnitMbps: 250',
        'pools:',
        '  - name: red-fast_1.a',
        '    network: red',
        '    physnet: datacentre',
        '    vendor: "8086"',
        '    device: "10CA"',
        '    driver: igbvf',
        '    pfNames: ["ens1f0#0-7", "ens1f1"]',
        '    deviceType: vfio-pci',
        '    redundancy: true',
        '    placement: spread',
        '',
      ].join('\n'),
    );
    const p = c.pools[0]!;
    assert.equal(c.bandwidthUnitMbps, 250);
    assert.equal(p.resourceName, 'nfv.example.com/red-fast_1.a');
    assert.deepEqual(
      p.pfNames?.map(({ pf, vfs }) => ({ pf, vfs })),
      [
        { pf: 'ens1f0', vfs: { from: 0, to: 7 } },
        { pf: 'ens1f1', vfs: null },
      ],
    );
    assert.equal(p.device, '10ca');
    assert.deepEqual([p.deviceType, p.redundancy, p.placement, p.driver, p.physnet], ['vfio-pci', true, 'spread', 'igbvf', 'datacentre']);
  });

  it('derives the environment variables: every non-alphanumeric becomes _, upper-case', () => {
    const p = parse('pools:\n  - name: red-x\n    network: red\n').pools[0]!;
    assert.deepEqual(p.env, {
      devices: 'PCIDEVICE_VFLEET_IO_RED_X',
      info: 'PCIDEVICE_VFLEET_IO_RED_X_INFO',
      bwUnits: 'VFLEET_RED_X_BW_UNITS',
      bwUnitMbps: 'VFLEET_RED_X_BW_UNIT_MBPS',
    });
    assert.equal(envWord('a.b-c_d/E'), 'A_B_C_D_E');
  });

  it('accepts pools of one network split by disjoint pfNames ranges, and pools of different networks sharing a physnet', () => {
    const c = parse(
      'pools:\n  - name: red-a\n    network: red\n    pfNames: ["ens1f0#0-3"]\n  - name: red-b\n    network: red\n    pfNames: ["ens1f0#4-7", "ens1f1"]\n  - name: blue\n    network: blue\n  - name: green\n    network: green\n',
    );
    assert.equal(c.pools.length, 4);
  });

  it('accepts one network in pools of different device types, or vendors', () => {
    assert.equal(parse(two('    deviceType: vfio-pci\n', '')).pools.length, 2);
    const same = 'pools:\n  - name: a\n    network: red\n    deviceType: vfio-pci\n  - name: b\n    network: red\n    deviceType: netdevice\n';
    assert.equal(parse(same).pools.length, 2);
    const vendors = 'pools:\n  - name: a\n    network: red\n    vendor: "8086"\n  - name: b\n    network: red\n    vendor: "15b3"\n';
    assert.equal(parse(vendors).pools.length, 2);
  });
});

describe('pool file: refused with the line and the reason', () => {
  it('a VF range that is backwards, beyond 255 or not numbers', () => {
    const yaml = (v: string) => `pools:\n  - name: red\n    network: red\n  - name: blue\n    network: blue\n    pfNames:\n      - ens1f1\n      - "${v}"\n`;
    refused(yaml('ens1f0#7-3'), /^pools\.yaml:8: pools\[1\]\.pfNames\[1\]: "ens1f0#7-3" is not a VF range \(FROM-TO, FROM ≤ TO, 0-255\); /);
    refused(yaml('ens1f0#0-256'), /^pools\.yaml:8: .*"ens1f0#0-256" is not a VF range/);
    refused(yaml('ens1f0#a-b'), /^pools\.yaml:8: .*is not a VF range/);
    refused(yaml('ens1f0#3'), /^pools\.yaml:8: .*is not a VF range/);
    refused(yaml('bad name#0-1'), /^pools\.yaml:8: pools\[1\]\.pfNames\[1\]: interface name "bad name" is not valid/);
  });

  it('resource names Kubernetes would not take', () => {
    refused('pools:\n  - name: -red\n    network: red\n', /^pools\.yaml:2: pools\[0\]\.name: "-red" is not a resource name/);
    refused('pools:\n  - name: red/x\n    network: red\n', /^pools\.yaml:2: .*is not a resource name/);
    // 61 characters: fits 63, but red…-bw does not.
    refused(`pools:\n  - name: ${'r'.repeat(61)}\n    network: red\n`, /^pools\.yaml:2: pools\[0\]\.name: .*1-60 letters/);
    assert.equal(parse(`pools:\n  - name: ${'r'.repeat(60)}\n    network: red\n`).pools[0]!.bandwidthResourceName.split('/')[1]!.length, 63);
  });

  it('a resource prefix that is no DNS subdomain, or Kubernetes own', () => {
    const yaml = (p: string) => `resourcePrefix: ${p}\npools:\n  - name: red\n    network: red\n`;
    refused(yaml('Vfleet.IO'), /^pools\.yaml:1: resourcePrefix: "Vfleet\.IO" is not a DNS subdomain/);
    refused(yaml('vfleet..io'), /^pools\.yaml:1: resourcePrefix: .*not a DNS subdomain/);
    refused(yaml(`${'a'.repeat(250)}.io`), /^pools\.yaml:1: resourcePrefix: .*at most 244/);
    refused(yaml('kubernetes.io'), /^pools\.yaml:1: resourcePrefix: .*reserved by Kubernetes/);
    refused(yaml('nic.kubernetes.io'), /reserved by Kubernetes/);
    refused(yaml('requests.vfleet.io'), /"requests\."/);
  });

  it('unknown keys, at the top and in a pool', () => {
    refused('pools:\n  - name: red\n    network: red\n    selector: {}\n', /^pools\.yaml:4: pools\[0\]\.selector: .*selector/);
    refused('prefix: x\npools:\n  - name: red\n    network: red\n', /^pools\.yaml:1: prefix: /);
  });

  it('duplicate pool names, and a pool named like another pool\'s bandwidth resource', () => {
    refused(two('', '') + '  - name: red\n    network: green\n', /^pools\.yaml:6: pools\[2\]\.name: resource vfleet\.io\/red is already pools\[0\]/);
    refused('pools:\n  - name: red\n    network: red\n  - name: red-bw\n    network: blue\n', /^pools\.yaml:4: pools\[1\]\.name: resource vfleet\.io\/red-bw is already the bandwidth resource of pools\[0\]/);
  });

  it('environment variable names that collide after derivation', () => {
    refused('pools:\n  - name: red-x\n    network: red\n  - name: red_x\n    network: blue\n', /^pools\.yaml:4: pools\[1\]\.name: environment variable PCIDEVICE_VFLEET_IO_RED_X would also be pools\[0\]'s \(red-x\)/);
    refused('pools:\n  - name: red\n    network: red\n  - name: red-info\n    network: blue\n', /^pools\.yaml:4: .*PCIDEVICE_VFLEET_IO_RED_INFO/);
    refused('pools:\n  - name: Red\n    network: red\n  - name: red\n    network: blue\n', /^pools\.yaml:4: .*PCIDEVICE_VFLEET_IO_RED would also be/);
  });

  it('overlapping pools: one network twice, or two pfNames ranges meeting on a PF', () => {
    refused(two('', '').replace('network: blue', 'network: red'), /^pools\.yaml:4: pools\[1\]: pools red and blue both select the same VFs of network red/);
    refused(
      'pools:\n  - name: a\n    network: red\n    pfNames: ["ens1f0#0-3"]\n  - name: b\n    network: red\n    pfNames: ["ens1f0#3-7"]\n',
      /^pools\.yaml:5: pools\[1\]: pools a and b both select ens1f0 VF 3 of network red/,
    );
    // One side without pfNames may take any PF of the network.
    refused('pools:\n  - name: a\n    network: red\n    pfNames: ["ens1f0#0-3"]\n  - name: b\n    network: red\n', /pools a and b both select the same VFs of network red/);
    refused(
      'pools:\n  - name: a\n    network: red\n    pfNames: ["ens1f0"]\n  - name: b\n    network: blue\n    pfNames:\n      - "ens1f0#5-6"\n',
      /^pools\.yaml:8: pools\[1\]\.pfNames: pools a and b both name ens1f0 VF 5 in pfNames/,
    );
  });

  it('other values: unit, pools list, device type, hex ids, YAML', () => {
    refused('bandwidthUnitMbps: 0\npools:\n  - name: red\n    network: red\n', /^pools\.yaml:1: bandwidthUnitMbps: must be 1-100000 Mbps/);
    refused('pools: []\n', /^pools\.yaml:1: pools: lists no pool/);
    refused('pools:\n  - name: red\n    network: red\n    deviceType: dpdk\n', /^pools\.yaml:4: pools\[0\]\.deviceType: must be netdevice or vfio-pci/);
    refused('pools:\n  - name: red\n    network: red\n    vendor: "80860"\n', /^pools\.yaml:4: pools\[0\]\.vendor: must be a 4-digit hex id/);
    refused('pools:\n  - name: red\n    network: Red\n', /^pools\.yaml:3: pools\[0\]\.network: must be 1-63 lower-case/);
    refused('pools:\n  - name: red\n    network: red\n    placement: random\n', /^pools\.yaml:4: pools\[0\]\.placement: must be pack or spread/);
    refused('pools:\n  - name: red\n  network: [\n', /^pools\.yaml:\d+: not valid YAML/);
    refused('pools:\n  - name: red\n', /^pools\.yaml:2: pools\[0\]\.network: is required/);
  });

  it('a PF this host does not have, at start, with its line', () => {
    const c = parse('pools:\n  - name: red\n    network: red\n    pfNames:\n      - ens1f0\n      - "ens9f0#0-3"\n');
    assert.doesNotThrow(() => checkPoolsOnHost(c, { pfs: [{ name: 'ens1f0' }, { name: 'ens9f0' }] }));
    assert.throws(() => checkPoolsOnHost(c, { pfs: [{ name: 'ens1f0' }, { name: 'ens1f1' }] }), {
      code: 'INVALID_ARGUMENT',
      message: 'pools.yaml:6: pools[0].pfNames[1]: PF ens9f0 is not on this host (its SR-IOV PFs: ens1f0, ens1f1)',
    });
  });

  it('parsePfName alone', () => {
    assert.deepEqual(parsePfName('ens1f0#0-0'), { pf: 'ens1f0', vfs: { from: 0, to: 0 } });
    assert.deepEqual(parsePfName('ens1f0#0-255'), { pf: 'ens1f0', vfs: { from: 0, to: 255 } });
    assert.throws(() => parsePfName('ens1f0#01-3'), /not a VF range/);
  });

  it('reads only a regular file of bounded size: a device, a directory or a huge file is refused in one line, without reading it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-pools-'));
    try {
      const big = join(dir, 'big.yaml');
      await writeFile(big, `pools:\n  - name: red\n    network: red\n#${'x'.repeat(2 * 1024 * 1024)}\n`);
      for (const [path, why] of [['/dev/zero', /not a regular file/], [dir, /not a regular file/], [big, /is 2\.0 MB, above the 1 MB a pool file may be/]] as const) {
        await assert.rejects(readPoolFile(path), (e: SriovError) => e.code === 'INVALID_ARGUMENT' && why.test(e.message) && e.message.includes(path) && !e.message.includes('\n'));
      }
      await writeFile(big, 'pools:\n  - name: red\n    network: red\n');
      assert.equal((await readPoolFile(big)).pools[0]!.resourceName, 'vfleet.io/red');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
