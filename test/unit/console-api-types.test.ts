/** The console is typed against the API it talks to: its generated types match the daemon's OpenAPI document. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { API_TYPES_FILE, apiTypesSource, writtenApiTypes } from '../support/api-types.js';

it('src/console/api-types.ts is what the daemon\'s OpenAPI document generates (else: npm run gen:api-types)', async () => {
  const fresh = await apiTypesSource();
  const written = await writtenApiTypes(process.cwd());
  assert.ok(fresh.includes('"/v1/overview"'), 'the generator sees the routes');
  assert.equal(written, fresh, `${API_TYPES_FILE} is out of date: run npm run gen:api-types and commit it`);
});
