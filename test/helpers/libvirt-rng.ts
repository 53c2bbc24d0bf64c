/**
 * An in-process libvirt schema check: xmllint compiled to WebAssembly
 * (xmllint-wasm), over libvirt's published RelaxNG schemas vendored in
 * test/fixtures/libvirt-schemas. It needs no system package, so the XML
 * check runs wherever `npm test` does; the system suite runs the same
 * contract against virt-xml-validate.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { validateXML, type XMLFileInfo } from 'xmllint-wasm';
import type { DomainValidator } from '../../src/vm/validate-xml.js';

const SCHEMAS = fileURLToPath(new URL('../../../test/fixtures/libvirt-schemas/', import.meta.url));

let schemas: XMLFileInfo[] | undefined;

function loadSchemas(): XMLFileInfo[] {
  schemas ??= readdirSync(SCHEMAS)
    .filter((f) => f.endsWith('.rng'))
    .map((fileName) => ({ fileName, contents: readFileSync(SCHEMAS + fileName, 'utf8') }));
  return schemas;
}

/** `xmllint --relaxng domain.rng domain.xml`, with the schema's includes preloaded beside it. */
export const xmllintWasmValidate: DomainValidator = async (document) => {
  const all = loadSchemas();
  const schema = all.find((f) => f.fileName === 'domain.rng')!;
  const res = await validateXML({
    xml: { fileName: 'domain.xml', contents: document },
    schema,
    preload: all.filter((f) => f !== schema),
    extension: 'relaxng',
  });
  return { ok: res.valid, output: res.rawOutput.trim() };
};
