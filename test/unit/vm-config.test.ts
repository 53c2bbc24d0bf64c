import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import {
  hostdevInterfaceXml,
  parseDomainName,
  qemuArgs,
  standbyInterfaceXml,
  type StandbySource,
} from '../../src/vm/libvirt.js';
import { escapeXml } from '../../src/vm/xml.js';
import type { VmNicSpec } from '../../src/vm/nic.js';
import { FAILOVER, SPEC } from '../helpers/vm-nic.js';

const code = (c: string) => (e: unknown) => e instanceof SriovError && e.code === c;


const lines = (...l: string[]) => l.join('\n');

/** The value of attr on the first <el .../> in xml. */
function attr(xml: string, el: string, name: string): string | undefined {
  const tag = new RegExp(`<${el}\\b[^>]*>`).exec(xml)?.[0];
  return tag && new RegExp(`\\s${name}='([^']*)'`).exec(tag)?.[1];
}

describe('hostdevInterfaceXml', () => {
  it('writes the VF as a managed hostdev interface', () => {
    assert.equal(
      hostdevInterfaceXml(SPEC),
      lines(
        "<interface type='hostdev' managed='yes'>",
        "  <mac address='02:5f:00:00:00:01'/>",
        "  <driver name='vfio'/>",
        '  <source>',
        "    <address type='pci' domain='0x0000' bus='0x3b' slot='0x02' function='0x1'/>",
        '  </source>',
        '  <vlan>',
        "    <tag id='100'/>",
        '  </vlan>',
        "  <alias name='ua-sriov-1a2b3c4d'/>",
        '</interface>',
      ),
    );
  });

  it('leaves <vlan> out for VLAN 0 and has no <teaming> without failover', () => {
    const xml = hostdevInterfaceXml({ ...SPEC, vlan: 0 });
    assert.doesNotMatch(xml, /<vlan|<tag/);
    assert.doesNotMatch(xml, /<teaming/);
  });

  it('normalises the MAC and a short PCI address, and takes a non-zero PCI domain', () => {
    const xml = hostdevInterfaceXml({ ...SPEC, mac: '02-5F-00-00-00-0A', pciAddress: '3B:1F.7' });
    assert.equal(attr(xml, 'mac', 'address'), '02:5f:00:00:00:0a');
    assert.equal(attr(xml, 'address', 'slot'), '0x1f');
    assert.equal(attr(xml, 'address', 'function'), '0x7');
    assert.equal(attr(hostdevInterfaceXml({ ...SPEC, pciAddress: '10ab:3b:02.1' }), 'address', 'domain'), '0x10ab');
  });

  it('refuses what is not a valid VF allocation', () => {
    const bad: Array<Partial<VmNicSpec>> = [
      { pciAddress: '0000:3b:02' },
      { pciAddress: "0000:3b:02.1' bogus='" },
      { pciAddress: '0000:3b:20.1' }, // slot above 0x1f
      { mac: '03:00:00:00:00:01' }, // multicast
      { mac: "02:5f:00:00:00:01'/><evil/>" },
      { vlan: 4095 },
      { vlan: -1 },
      { qos: 8 },
      { id: 'short' },
      { id: '1a2b-3c4d' },
      { vmName: 'a/b' },
    ];
    for (const b of bad) assert.throws(() => hostdevInterfaceXml({ ...SPEC, ...b }), code('INVALID_ARGUMENT'), JSON.stringify(b));
  });

  it('refuses a VLAN priority or 802.1ad, which libvirt would reset on attach', () => {
    assert.throws(() => hostdevInterfaceXml({ ...SPEC, qos: 3 }), code('UNSUPPORTED'));
    assert.throws(() => hostdevInterfaceXml({ ...SPEC, vlanProto: '802.1ad' }), code('UNSUPPORTED'));
    assert.doesNotThrow(() => hostdevInterfaceXml({ ...SPEC, vlan: 0, vlanProto: '802.1ad' }));
    assert.doesNotThrow(() => hostdevInterfaceXml({ ...SPEC, qos: 0 }));
  });
});

describe('failover pair', () => {
  it('makes the VF the transient member, pointing at the standby', () => {
    assert.equal(
      hostdevInterfaceXml(FAILOVER),
      lines(
        "<interface type='hostdev' managed='yes'>",
        "  <mac address='02:5f:00:00:00:01'/>",
        "  <driver name='vfio'/>",
        '  <source>',
        "    <address type='pci' domain='0x0000' bus='0x3b' slot='0x02' function='0x1'/>",
        '  </source>',
        '  <vlan>',
        "    <tag id='100'/>",
        '  </vlan>',
        "  <teaming type='transient' persistent='ua-backup-1a2b3c4d'/>",
        "  <alias name='ua-sriov-1a2b3c4d'/>",
        '</interface>',
      ),
    );
  });

  it('makes a virtio standby on the default network the persistent member', () => {
    assert.equal(
      standbyInterfaceXml(FAILOVER),
      lines(
        "<interface type='network'>",
        "  <mac address='02:5f:00:00:00:01'/>",
        "  <source network='default'/>",
        "  <model type='virtio'/>",
        "  <teaming type='persistent'/>",
        "  <alias name='ua-backup-1a2b3c4d'/>",
        '</interface>',
      ),
    );
  });

  it('gives both members the same MAC, and ties them by the standby alias', () => {
    const spec = { ...FAILOVER, mac: '02:AB:CD:EF:00:42' };
    const primary = hostdevInterfaceXml(spec);
    const standby = standbyInterfaceXml(spec, { network: 'tenant-a' });
    assert.equal(attr(primary, 'mac', 'address'), '02:ab:cd:ef:00:42');
    assert.equal(attr(standby, 'mac', 'address'), attr(primary, 'mac', 'address'));
    assert.equal(attr(primary, 'teaming', 'persistent'), attr(standby, 'alias', 'name'));
    assert.notEqual(attr(primary, 'alias', 'name'), attr(standby, 'alias', 'name'));
    for (const xml of [primary, standby]) assert.match(attr(xml, 'alias', 'name') ?? '', /^ua-/);
  });

  it('puts the standby on a bridge when asked', () => {
    const xml = standbyInterfaceXml(FAILOVER, { bridge: 'br-vlan100' });
    assert.equal(attr(xml, 'interface', 'type'), 'bridge');
    assert.equal(attr(xml, 'source', 'bridge'), 'br-vlan100');
    assert.doesNotMatch(xml, /network=/);
  });

  it('refuses a standby without failover, and bad network or bridge names', () => {
    assert.throws(() => standbyInterfaceXml(SPEC), code('INVALID_ARGUMENT'));
    const bad: StandbySource[] = [{ network: '' }, { network: 'a/b' }, { bridge: 'br0 x' }, { bridge: 'a-very-long-bridge-name' }];
    for (const s of bad) assert.throws(() => standbyInterfaceXml(FAILOVER, s), code('INVALID_ARGUMENT'), JSON.stringify(s));
  });
});

describe('XML escaping', () => {
  it('escapes the five XML specials', () => {
    assert.equal(escapeXml(`a&b<c>d"e'f`), 'a&amp;b&lt;c&gt;d&quot;e&apos;f');
  });

  it('keeps a hostile network name inside its attribute', () => {
    const xml = standbyInterfaceXml(FAILOVER, { network: `it's <a&b> "net"` });
    assert.match(xml, /<source network='it&apos;s &lt;a&amp;b&gt; &quot;net&quot;'\/>/);
    assert.equal((xml.match(/</g) ?? []).length, 7); // 6 elements, one closing tag
  });
});

describe('qemuArgs', () => {
  it('passes the VF with vfio-pci', () => {
    assert.deepEqual(qemuArgs(SPEC), ['-device', 'vfio-pci,host=0000:3b:02.1,id=hostdev-1a2b3c4d']);
  });

  it('pairs a virtio-net standby with the VF for failover', () => {
    assert.deepEqual(qemuArgs(FAILOVER), [
      '-netdev',
      'tap,id=hostnet-1a2b3c4d,ifname=sriov-1a2b3c4d,script=no,downscript=no',
      '-device',
      'virtio-net-pci,netdev=hostnet-1a2b3c4d,id=net-1a2b3c4d,mac=02:5f:00:00:00:01,failover=on',
      '-device',
      'vfio-pci,host=0000:3b:02.1,id=hostdev-1a2b3c4d,failover_pair_id=net-1a2b3c4d',
    ]);
  });

  it('takes a tap and PCIe root ports', () => {
    const args = qemuArgs(FAILOVER, { tap: 'tap7', bus: { primary: 'root1', standby: 'root2' } });
    assert.equal(args[1], 'tap,id=hostnet-1a2b3c4d,ifname=tap7,script=no,downscript=no');
    assert.equal(args[3], 'virtio-net-pci,netdev=hostnet-1a2b3c4d,id=net-1a2b3c4d,mac=02:5f:00:00:00:01,bus=root2,failover=on');
    assert.equal(args[5], 'vfio-pci,host=0000:3b:02.1,id=hostdev-1a2b3c4d,bus=root1,failover_pair_id=net-1a2b3c4d');
  });

  it('leaves VLAN and priority to the PF side, so takes any', () => {
    assert.deepEqual(qemuArgs({ ...SPEC, qos: 5, vlanProto: '802.1ad' }), qemuArgs(SPEC));
  });

  it('refuses values that would break out of a QEMU option string', () => {
    assert.throws(() => qemuArgs(FAILOVER, { tap: 'tap0,script=/tmp/x' }), code('INVALID_ARGUMENT'));
    assert.throws(() => qemuArgs(SPEC, { bus: { primary: 'root1,x=y', standby: 'root2' } }), code('INVALID_ARGUMENT'));
    assert.throws(() => qemuArgs(SPEC, { bus: { primary: 'root1', standby: '2root' } }), code('INVALID_ARGUMENT'));
  });
});

describe('parseDomainName', () => {
  const accepted = ['vm1', 'vnf-01.prod', 'my vm', "o'brien & co", 'Ωmega', 'x'.repeat(200), '-live'];
  const refused: Array<[string, string]> = [
    ['', 'empty'],
    ['a/b', 'slash'],
    ['/etc', 'leading slash'],
    ['vm\n1', 'newline'],
    ['vm\t1', 'tab'],
    ['vm\u00001', 'NUL'],
    ['vm\u007f', 'DEL'],
    ['vm\u0085', 'C1 control'],
    [' vm', 'leading space'],
    ['vm ', 'trailing space'],
    ['x'.repeat(201), '201 bytes'],
    ['é'.repeat(101), '202 bytes in UTF-8'],
  ];

  for (const name of accepted) {
    it(`accepts ${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)}`, () => {
      assert.equal(parseDomainName(name), name);
    });
  }
  for (const [name, why] of refused) {
    it(`refuses ${why}`, () => assert.throws(() => parseDomainName(name), code('INVALID_ARGUMENT')));
  }
});
