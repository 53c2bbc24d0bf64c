// What LinuxNetns reads from `ip -j addr` inside a namespace; test/system drives the real thing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { carrierOf, parseNetnsLinksJson } from '../../src/host/linux/netns.js';
import { KernelError } from '../../src/host/ports.js';

describe('parseNetnsLinksJson', () => {
  it('reads the PCI parent, flags and addresses, skipping IPv6 link-local', () => {
    const json = [
      { ifname: 'lo', flags: ['LOOPBACK'], mtu: 65536, address: '00:00:00:00:00:00', addr_info: [] },
      {
        ifname: 'net1',
        flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
        mtu: 1400,
        address: '02:5F:00:00:0C:01',
        parentbus: 'pci',
        parentdev: '0000:01:10.0',
        addr_info: [
          { family: 'inet', local: '198.18.40.10', prefixlen: 24 },
          { family: 'inet6', local: '2001:db8::10', prefixlen: 64 },
          { family: 'inet6', local: 'fe80::5f:ff:fe00:c01', prefixlen: 64 },
        ],
      },
      { ifname: 'veth0', flags: ['UP'], mtu: 1500, address: '02:00:00:00:00:01', parentbus: 'pci', parentdev: 'not-a-bdf' },
    ];
    assert.deepEqual(parseNetnsLinksJson(json), [
      { ifname: 'lo', pciAddress: null, mac: '00:00:00:00:00:00', mtu: 65536, up: false, addresses: [] },
      { ifname: 'net1', pciAddress: '0000:01:10.0', mac: '02:5f:00:00:0c:01', mtu: 1400, up: true, addresses: ['198.18.40.10/24', '2001:db8::10/64'] },
      { ifname: 'veth0', pciAddress: null, mac: '02:00:00:00:00:01', mtu: 1500, up: true, addresses: [] },
    ]);
    assert.throws(() => parseNetnsLinksJson({}), KernelError);
  });
});

describe('carrierOf (`ip -j link show dev IF`, before a re-home announces the link)', () => {
  it('has carrier only with both UP and LOWER_UP, and reads the MAC in lower case', () => {
    const show = (flags: string[]) => JSON.stringify([{ ifname: 'net1', flags, address: '02:5F:00:00:0C:01' }]);
    assert.deepEqual(carrierOf(show(['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'])), { carrier: true, mac: '02:5f:00:00:0c:01' });
    assert.deepEqual(carrierOf(show(['BROADCAST', 'MULTICAST', 'UP'])), { carrier: false, mac: '02:5f:00:00:0c:01' });
    assert.deepEqual(carrierOf(show(['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'])), { carrier: false, mac: '02:5f:00:00:0c:01' });
  });

  it('is null for output that shows no link, or no MAC it could set again', () => {
    for (const out of ['', 'not json', '[]', '{}', JSON.stringify([{ ifname: 'net1', flags: ['UP', 'LOWER_UP'], address: 'x y' }])]) assert.equal(carrierOf(out), null, out);
  });
});
