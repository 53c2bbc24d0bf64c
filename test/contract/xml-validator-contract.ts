/**
 * The libvirt XML contract: what every DomainValidator must say about the
 * interface XML that `attach vm` prints. It runs in-process (xmllint-wasm
 * over the vendored schemas) in the unit suite, and against the installed
 * virt-xml-validate in the system suite, so the two cannot disagree unseen.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostdevInterfaceXml, standbyInterfaceXml } from '../../src/vm/libvirt.js';
import { validateInterfaceXml, type DomainValidator } from '../../src/vm/validate-xml.js';
import { FAILOVER, SPEC } from '../helpers/vm-nic.js';


export function xmlValidatorContract(name: string, validator: DomainValidator, ready: () => Promise<void> = async () => {}): void {
  describe(`libvirt domain schema: ${name}`, () => {
    it('accepts the plain VF interface, with and without a VLAN', async () => {
      await ready();
      for (const spec of [SPEC, { ...SPEC, vlan: 0 }]) {
        const res = await validateInterfaceXml([hostdevInterfaceXml(spec)], validator);
        assert.ok(res.ok, res.output);
      }
    });

    it('accepts the failover pair, and two pairs in one domain', async () => {
      const other = { ...FAILOVER, id: '99887766-0000', pciAddress: '0000:3b:02.2', mac: '02:5f:00:00:00:02', vlan: 0 };
      const devices = [FAILOVER, other].flatMap((s) => [standbyInterfaceXml(s), hostdevInterfaceXml(s)]);
      const res = await validateInterfaceXml(devices, validator);
      assert.ok(res.ok, res.output);
      const bridged = await validateInterfaceXml([standbyInterfaceXml(FAILOVER, { bridge: 'br0' }), hostdevInterfaceXml(FAILOVER)], validator);
      assert.ok(bridged.ok, bridged.output);
    });

    it('really validates: a PCI slot above 0x1f, or an unknown element, fails', async () => {
      const badSlot = await validateInterfaceXml([hostdevInterfaceXml(SPEC).replace("slot='0x02'", "slot='0x20'")], validator);
      assert.equal(badSlot.ok, false);
      assert.match(badSlot.output, /domain\.xml fails to validate/);
      assert.doesNotMatch(badSlot.output, /vfleet-vm-/); // no temp path is shown
      const unknown = await validateInterfaceXml([hostdevInterfaceXml(SPEC).replace('</interface>', '<colour/></interface>')], validator);
      assert.equal(unknown.ok, false);
    });
  });
}
