/**
 * The libvirt adapter through the Hypervisor contract, against a `virsh`
 * that behaves like libvirt's (test/support/fake-virsh.ts, put first on
 * PATH for this process): no libvirtd is needed, and the argv the adapter
 * builds is what reaches it.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { LibvirtHypervisor } from '../../src/hypervisor/libvirt-hypervisor.js';
import { hypervisorContract, type HypervisorWorld } from '../contract/hypervisor.contract.js';
import type { FakeVirshState } from '../support/fake-virsh.js';

const VM = 'vm 1'; // libvirt allows spaces: one argv element
const SOURCE = 'qemu:///system';
const DEST = 'qemu+ssh://host-b.example/system';
const PRIMARY = { device: 'ua-sriov-0a1b2c3d', pciAddress: '0000:3b:02.0', mac: '02:5f:00:00:00:07', standby: 'ua-backup-0a1b2c3d' };
const DEST_VF = '0000:3b:12.0';
const fakeVirsh = fileURLToPath(new URL('../support/fake-virsh.js', import.meta.url));

interface LibvirtWorld extends HypervisorWorld {
  read(): Promise<FakeVirshState>;
  write(change: (s: FakeVirshState) => void): Promise<void>;
}

async function libvirtWorld(): Promise<LibvirtWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'virsh-'));
  const file = join(dir, 'state.json');
  const standby = { type: 'network' as const, mac: PRIMARY.mac, alias: PRIMARY.standby };
  const state: FakeVirshState = {
    hosts: {
      [SOURCE]: { [VM]: { state: 'running', interfaces: [standby, { type: 'hostdev', mac: PRIMARY.mac, alias: PRIMARY.device, pci: PRIMARY.pciAddress, persistent: PRIMARY.standby }] } },
      [DEST]: {},
    },
    guestUnplugs: true,
    failNextMigration: null,
    migrations: 0,
    jobs: {},
  };
  await writeFile(file, JSON.stringify(state));
  await writeFile(join(dir, 'virsh'), `#!/bin/sh\nexec "${process.execPath}" "${fakeVirsh}" "$@"\n`);
  await chmod(join(dir, 'virsh'), 0o755);
  process.env.PATH = `${dir}:${process.env.PATH}`;
  process.env.VFLEET_FAKE_VIRSH = file;
  const read = async () => JSON.parse(await readFile(file, 'utf8')) as FakeVirshState;
  const write = async (change: (s: FakeVirshState) => void) => {
    const s = await read();
    change(s);
    await writeFile(file, JSON.stringify(s));
  };
  const fast = { unplugTimeoutMs: 1_000 };
  return {
    source: new LibvirtHypervisor({ connect: SOURCE, ...fast }),
    // On host B, its own libvirt is the local one; the fake keeps it under B's remote URI.
    destination: new LibvirtHypervisor({ connect: DEST, ...fast }),
    vm: VM,
    migrateTo: DEST,
    primary: PRIMARY,
    destinationVf: DEST_VF,
    devices: async (side) => ((await read()).hosts[side === 'source' ? SOURCE : DEST]![VM]?.interfaces ?? []).map((i) => i.alias),
    breakNextMigration: () => write((s) => (s.failNextMigration = 'Unable to write to socket: Broken pipe')),
    read,
    write,
    close: async () => {
      process.env.PATH = process.env.PATH!.split(':').filter((p) => p !== dir).join(':');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

hypervisorContract({ name: 'libvirt (virsh)', guest: true, qemuStatuses: false, world: () => libvirtWorld() });

describe('libvirt adapter', () => {
  const withWorld = async (test: (w: LibvirtWorld) => Promise<void>) => {
    const w = await libvirtWorld();
    try {
      await test(w);
    } finally {
      await w.close();
    }
  };

  it("reports the destination's downtime and total time, and plugs the VF with its VLAN and failover teaming", () =>
    withWorld(async (w) => {
      const result = await w.source.migrate({ vm: VM, destination: DEST, sourceDevice: PRIMARY.device });
      assert.deepEqual(result, { statuses: ['active', 'completed'], downtimeMs: 78, totalMs: 2700 });
      await w.destination.plug({ vm: VM, pciAddress: DEST_VF, device: PRIMARY.device, mac: PRIMARY.mac, failoverPairId: PRIMARY.standby, vlan: 100 });
      const plugged = (await w.read()).hosts[DEST]![VM]!.interfaces.find((i) => i.alias === PRIMARY.device);
      assert.deepEqual(plugged, { type: 'hostdev', mac: PRIMARY.mac, alias: PRIMARY.device, pci: DEST_VF, vlan: 100, persistent: PRIMARY.standby });
      assert.equal((await w.read()).migrations, 1);
    }));

  it('refuses a device id libvirt would not keep as an alias, naming the ua- rule', () =>
    withWorld(async (w) => {
      await assert.rejects(w.source.unplug({ vm: VM, device: 'hostdev-0a1b2c3d' }), (e: unknown) => e instanceof SriovError && e.code === 'INVALID_ARGUMENT' && /ua-/.test(e.message));
    }));

  it('a VF in use by another domain is BUSY, and nothing is plugged', () =>
    withWorld(async (w) => {
      await w.write((s) => (s.hosts[SOURCE]!.other = { state: 'running', interfaces: [{ type: 'hostdev', mac: '02:5f:00:00:00:08', alias: 'ua-sriov-99999999', pci: DEST_VF }] }));
      await w.source.unplug({ vm: VM, device: PRIMARY.device });
      await assert.rejects(w.source.plug({ vm: VM, pciAddress: DEST_VF, device: PRIMARY.device, mac: PRIMARY.mac, failoverPairId: PRIMARY.standby }), (e: unknown) => e instanceof SriovError && e.code === 'BUSY');
      assert.deepEqual(await w.devices('source'), [PRIMARY.standby]);
    }));

  it('a guest that does not let go: unplug times out, naming the device', () =>
    withWorld(async (w) => {
      await w.write((s) => (s.guestUnplugs = false));
      await assert.rejects(w.source.unplug({ vm: VM, device: PRIMARY.device }), (e: unknown) => e instanceof SriovError && e.code === 'TIMEOUT' && e.message.includes(PRIMARY.device));
    }));
});
