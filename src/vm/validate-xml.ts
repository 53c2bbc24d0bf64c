/**
 * Checks generated interface XML against libvirt's own RelaxNG schema. The
 * schema only knows whole documents, so the interfaces are wrapped into the
 * smallest domain it accepts, and a `DomainValidator` judges that document.
 * On a host, the validator is virt-xml-validate (Debian: libvirt-clients,
 * which needs xmllint from libxml2-utils); the tests also run an in-process
 * xmllint over the published schemas, so the check runs everywhere.
 */
import { SriovError } from '../host/errors.js';
import { run } from '../host/linux/exec.js';
import { commandWorks } from './command.js';
import { withTempFile } from './temp-file.js';
import { element, textElement } from './xml.js';

export interface XmlValidation {
  ok: boolean;
  /** What the validator printed, the document named `domain.xml` whatever file it was read from. */
  output: string;
}

/** Validates one whole libvirt domain document against the `domain` schema. */
export type DomainValidator = (document: string) => Promise<XmlValidation>;

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

export function validateInterfaceXml(interfaces: readonly string[], validator: DomainValidator = virtXmlValidate): Promise<XmlValidation> {
  return validator(`${domainDocument(interfaces)}\n`);
}

/** `virt-xml-validate FILE domain`, with the system's installed libvirt schemas. */
export const virtXmlValidate: DomainValidator = (document) =>
  withTempFile('domain.xml', document, async (file) => {
    const res = await run('virt-xml-validate', [file, 'domain']).catch((e: unknown) => {
      throw isNotInstalled(e) ? new SriovError('NOT_FOUND', MISSING, { cause: e }) : e;
    });
    const output = `${res.stdout}${res.stderr}`.replaceAll(file, 'domain.xml').trim();
    // The script exits 127 when its xmllint is missing: no verdict on the XML.
    if (res.code === 127) throw new SriovError('NOT_FOUND', `${MISSING}: ${output}`);
    return { ok: res.code === 0, output };
  });

/** virt-xml-validate is a shell script around xmllint, so both must be there. */
export async function virtXmlValidateAvailable(): Promise<boolean> {
  return (await commandWorks('virt-xml-validate', ['--version'])) && (await commandWorks('xmllint', ['--version']));
}
