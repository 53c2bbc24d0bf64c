// The libvirt XML contract in-process; test/system runs it against virt-xml-validate.
import { xmlValidatorContract } from '../contract/xml-validator-contract.js';
import { xmllintWasmValidate } from '../helpers/libvirt-rng.js';

xmlValidatorContract('xmllint-wasm over the vendored libvirt 11.3 schemas', xmllintWasmValidate);
