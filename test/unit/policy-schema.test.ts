// The node policy file: every refusal names the file, the line and the field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { parsePolicyDocument } from '../../src/policy/schema.js';

const head = 'policies:\n  - name: fabric-a\n    selector: { pfNames: [ens1f0] }\n';

/** [what, document, line, field-and-message pattern] */
const cases: Array<[string, string, number, RegExp]> = [
  ['numVfs in hex', `${head}    numVfs: 0x10\n`, 4, /"0x10" is not a decimal whole number/],
  ['numVfs with a leading zero', `${head}    numVfs: 010\n`, 4, /"010" is not a decimal/],
  ['numVfs with an exponent', `${head}    numVfs: 1e3\n`, 4, /"1e3" is not a decimal/],
  ['numVfs with a plus sign', `${head}    numVfs: +5\n`, 4, /"\+5" is not a decimal/],
  ['numVfs negative', `${head}    numVfs: -1\n`, 4, /policies\[0\]\.numVfs: numVfs must be 0 \(remove all VFs\) or more/],
  ['numVfs as text', `${head}    numVfs: four\n`, 4, /policies\[0\]\.numVfs: numVfs must be a whole number/],
  ['numVfs missing', `${head}`, 2, /policies\[0\]\.numVfs: numVfs must be a whole number/],
  ['VLAN out of range', `${head}    numVfs: 4\n    vfs:\n      0-3: { vlan: 5000 }\n`, 6, /policies\[0\]\.vfs\["0-3"\]\.vlan: VLAN must be between 0 and 4094, got 5000/],
  ['VLAN in octal', `${head}    numVfs: 4\n    vfs:\n      "1":\n        vlan: 0o17\n`, 7, /"0o17" is not a decimal/],
  ['bad MAC', `${head}    numVfs: 4\n    vfs:\n      "2": { mac: "02:00:00:00:00" }\n`, 6, /vfs\["2"\]\.mac: MAC "02:00:00:00:00" is not a MAC address/],
  ['one MAC for a range', `${head}    numVfs: 4\n    vfs:\n      0-1: { mac: "02:00:00:00:00:01" }\n`, 6, /MAC 02:00:00:00:00:01 is given to policy fabric-a VF 0 and policy fabric-a VF 1/],
  [
    'one MAC in two policies',
    `${head}    numVfs: 1\n    vfs:\n      "0": { mac: "02:00:00:00:00:01" }\n  - name: b\n    selector: { pfNames: [ens1f1] }\n    numVfs: 1\n    vfs:\n      "0": { mac: "02:00:00:00:00:01" }\n`,
    11,
    /policies\[1\]\.vfs\["0"\]\.mac: MAC 02:00:00:00:00:01 is given to policy fabric-a VF 0 and policy b VF 0/,
  ],
  ['VF beyond numVfs', `${head}    numVfs: 2\n    vfs:\n      0-3: { trust: on }\n`, 6, /vfs\["0-3"\]: VF 2 is beyond numVfs 2 \(VFs are 0-1\)/],
  ['VF range not decimal', `${head}    numVfs: 2\n    vfs:\n      "00-1": { trust: on }\n`, 6, /VF range "00-1" is not a list of decimal indexes/],
  ['numVfs 0 with settings', `${head}    numVfs: 0\n    vfs:\n      "0": { trust: on }\n`, 6, /numVfs 0 removes every VF/],
  ['an unknown field', `${head}    numVfs: 2\n    numvfs: 3\n`, 5, /policies\[0\]\.numvfs: Unrecognized key: "numvfs"/],
  ['an unknown VF setting', `${head}    numVfs: 2\n    vfs:\n      "0": { vlna: 3 }\n`, 6, /Unrecognized key: "vlna"/],
  ['a bad interface name', 'policies:\n  - name: a\n    selector: { pfNames: ["ens1f0;reboot"] }\n    numVfs: 1\n', 3, /selector\.pfNames\[0\]: interface name "ens1f0;reboot" is not valid/],
  ['a bad PCI address', 'policies:\n  - name: a\n    selector:\n      pciAddresses: ["0000:3b:00"]\n    numVfs: 1\n', 4, /selector\.pciAddresses\[0\]: "0000:3b:00" is not a PCI address/],
  ['a bad vendor id', 'policies:\n  - name: a\n    selector: { vendor: intel }\n    numVfs: 1\n', 3, /selector\.vendor: must be a 4-digit hex id/],
  ['an empty selector', 'policies:\n  - name: a\n    selector: {}\n    numVfs: 1\n', 3, /the selector is empty/],
  ['an upper-case name', 'policies:\n  - name: Fabric\n    selector: { pfNames: [x] }\n    numVfs: 1\n', 2, /policies\[0\]\.name: must be 1-63 lower-case letters/],
  ['a name used twice', `${head}    numVfs: 1\n  - name: fabric-a\n    selector: { pfNames: [y] }\n    numVfs: 1\n`, 5, /policies\[1\]\.name: policy name fabric-a is already used by policies\[0\]/],
  ['mtu too small', `${head}    numVfs: 1\n    mtu: 60\n`, 5, /policies\[0\]\.mtu: mtu must be 68-65535/],
  ['a bad device type', `${head}    numVfs: 1\n    deviceType: dpdk\n`, 5, /deviceType: must be netdevice or vfio-pci/],
  ['YAML that does not parse', 'policies: [\n', 2, /not valid YAML/],
  ['a key given twice', `${head}    numVfs: 1\n    numVfs: 2\n`, 5, /not valid YAML: Map keys must be unique/],
  ['a tab as indentation', 'policies:\n\t- name: a\n', 2, /not valid YAML/],
  ['not a policy file at all', 'root:x:0:0:root:/root:/bin/bash\n', 1, /must be a map with a policies list|Unrecognized key/],
];

describe('node policy file: refusals name the file, line and field', () => {
  for (const [what, text, line, pattern] of cases) {
    it(what, () => {
      assert.throws(
        () => parsePolicyDocument(text, 'fabric.yaml'),
        (e) => {
          assert.ok(e instanceof SriovError, `not a SriovError: ${String(e)}`);
          assert.equal(e.code, 'INVALID_ARGUMENT');
          assert.ok(e.message.startsWith(`fabric.yaml:${line}: `), `wrong position: ${e.message}`);
          assert.match(e.message, pattern);
          assert.ok(!e.message.includes('\n'), 'one line');
          assert.ok(!/\^|\$\/|\\d/.test(e.message), `a regex reached the message: ${e.message}`);
          return true;
        },
      );
    });
  }

  it('accepts a valid file: decimal numbers, ranges expanded, on/off read', () => {
    const [p] = parsePolicyDocument(`${head}    numVfs: 4\n    mtu: 9000\n    vfs:\n      0-1,3: { vlan: 100, trust: off }\n      "3": { mac: "02:00:00:00:00:03" }\n`, 'ok.yaml');
    assert.equal(p!.numVfs, 4);
    assert.deepEqual([...p!.vfs.keys()].sort(), [0, 1, 3]);
    assert.deepEqual(p!.vfs.get(3), { vlan: 100, trust: false, mac: '02:00:00:00:00:03' });
  });

  it('accepts numVfs 0 on its own: remove every VF', () => {
    assert.equal(parsePolicyDocument(`${head}    numVfs: 0\n`)[0]!.numVfs, 0);
  });
});
