import assert from 'node:assert/strict';
import { SriovError } from '../../src/host/errors.js';

/** The refusal `promise` ends with: a SriovError with `code`; its message is the caller's to assert. */
export async function refusal(promise: Promise<unknown>, code: string): Promise<SriovError> {
  let caught: unknown;
  await promise.catch((e: unknown) => (caught = e));
  assert.ok(caught instanceof SriovError, `expected a ${code} refusal, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}
