/**
 * Checks generated interface XML against libvirt's own RelaxNG schema with
 * virt-xml-validate (Debian: libvirt-clients, which needs xmllint from
 * libxml2-utils). The schema only knows whole documents, so the interfaces
 * are wrapped into the smallest domain it accepts.
 */
import { SriovError } from '../host/errors.js';
import { run } from '../host/linux/exec.js';
import { commandWorks } from './command.js';
import { withTempFile } from './temp-file.js';
import { element, textElement } from './xml.js';

export interface XmlValidation {
  ok: boolean;
  /** What virt-xml-validate printed, with the temporary file's path replaced by `domain.xml`. */
  output: string;
}

const MISSING = 'virt-xml-validate or xmllint is not installed (Debian: libvirt-clients libxml2-utils)';

const isNotInstalled = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

export function domainDocument(interfaces: readonly string[]): string {
  return element('domain', { type: 'kvm' }, [
    textElement('name', 'vfleet-validate'),
    textElement('memory', '1048576', { unit: 'KiB' }),
    element('os', {}, [textElement('type', 'hvm')]),
    element('devices', {}, interfaces),
  ]);
}

export async function validateInterfaceXml(interfaces: readonly string[]): Promise<XmlValidation> {
  return withTempFile('domain.xml', `${domainDocument(interfaces)}\n`, async (file) => {
    const res = await run('virt-xml-validate', [file, 'domain']).catch((e: unknown) => {
      throw isNotInstalled(e) ? new SriovError('NOT_FOUND', MISSING, { cause: e }) : e;
    });
    const output = `${res.stdout}${res.stderr}`.replaceAll(file, 'domain.xml').trim();
    // The script exits 127 when its xmllint is missing: no verdict on the XML.
    if (res.code === 127) throw new SriovError('NOT_FOUND', `${MISSING}: ${output}`);
    return { ok: res.code === 0, output };
  });
}

/** virt-xml-validate is a shell script around xmllint, so both must be there. */
export async function virtXmlValidateAvailable(): Promise<boolean> {
  return (await commandWorks('virt-xml-validate', ['--version'])) && (await commandWorks('xmllint', ['--version']));
}
