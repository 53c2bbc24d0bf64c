/**
 * The libvirt tools on this machine (Debian: libvirt-clients, libxml2-utils):
 * the XML contract against the installed virt-xml-validate, and virsh
 * against libvirt's test driver (no daemon needed). `.ci/run` installs the
 * packages and runs this suite; `npm test` runs the same XML contract
 * in-process.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { hostdevInterfaceXml } from '../../src/vm/libvirt.js';
import { virtXmlValidate, virtXmlValidateAvailable } from '../../src/vm/validate-xml.js';
import { attachToDomain, domainExists, virshAvailable } from '../../src/vm/virsh.js';
import { xmlValidatorContract } from '../contract/xml-validator-contract.js';
import { SPEC } from '../helpers/vm-nic.js';

const code = (c: string) => (e: unknown) => e instanceof SriovError && e.code === c;


xmlValidatorContract('virt-xml-validate', virtXmlValidate, async () => {
  assert.ok(await virtXmlValidateAvailable(), 'virt-xml-validate and xmllint are required: apt-get install -y --no-install-recommends libvirt-clients libxml2-utils');
});

describe('virsh (libvirt test driver, no daemon needed)', () => {
  const connect = 'test:///default';
  const saved = process.env.TMPDIR;
  let tmp = '';

  before(async () => {
    assert.ok(await virshAvailable(), 'virsh is required for this test: apt-get install -y --no-install-recommends libvirt-clients');
    tmp = await mkdtemp(join(tmpdir(), 'vm-config-test-'));
    process.env.TMPDIR = tmp; // so the test sees the temp files virsh.ts leaves, if any
  });

  after(async () => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    await rm(tmp, { recursive: true, force: true });
  });

  it('tells an existing domain from a missing one', async () => {
    assert.equal(await domainExists('test', { connect }), true);
    assert.equal(await domainExists('no-such-vm', { connect }), false);
    assert.equal(await domainExists('--live', { connect }), false); // a name, not an option
  });

  it("maps virsh's refusal to a typed error and removes the temp file", async () => {
    const xml = hostdevInterfaceXml(SPEC);
    // The test driver does not implement device attach; libvirt says so.
    await assert.rejects(attachToDomain('test', xml, { live: true, config: false, connect }), (e: unknown) => {
      assert.ok(e instanceof SriovError && e.code === 'UNSUPPORTED', String(e));
      assert.match(e.message, /^virsh attach-device test: this function is not supported/);
      assert.doesNotMatch(e.message, /Failed to attach device from/);
      return true;
    });
    await assert.rejects(attachToDomain('no-such-vm', xml, { live: true, config: true, connect }), code('NOT_FOUND'));
    assert.deepEqual(await readdir(tmp), []);
  });

  it('refuses a bad domain name or URI before running virsh', async () => {
    await assert.rejects(attachToDomain('a/b', '<x/>', { live: true, config: false, connect }), code('INVALID_ARGUMENT'));
    await assert.rejects(domainExists('test', { connect: '--readonly' }), code('INVALID_ARGUMENT'));
  });
});
