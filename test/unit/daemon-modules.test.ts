// `sriovd agent` loads only what an agent runs: main.ts declares the commands
// and imports each command's code when it runs. Checked on the built modules'
// static imports (what loads with a module, before any of its code runs).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { youngGenerationSized } from '../../src/daemon/heap.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const STATIC_IMPORT = /^(?:import|export)\s[^;]*?from\s+'([^']+)'|^import\s+'([^']+)'/gms;

/** Every module and package `file` loads statically, itself included (relative to dist/src, or `pkg:NAME`). */
function staticGraph(file: string, seen = new Set<string>()): Set<string> {
  const id = file.startsWith('pkg:') ? file : file.slice(SRC.length);
  if (seen.has(id)) return seen;
  seen.add(id);
  if (file.startsWith('pkg:')) return seen;
  for (const m of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
    const spec = (m[1] ?? m[2])!;
    // A type-only import leaves nothing in the built file, so it is not seen here.
    staticGraph(spec.startsWith('.') ? resolve(dirname(file), spec) : `pkg:${spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')}`, seen);
  }
  return seen;
}

/** What only the controller, the stores, the API and the device plugin need (`--store`'s URL parser is checked on every command). */
const NOT_FOR_AGENTS = [/^api\//, /^store\/(?!etcd\/(url|keys)\.js$)/, /^controller\/control-plane\.js$/, /^k8s\/device-plugin\//, /^agent\/fleet\.js$/, /^pkg:(fastify|@fastify\/.*|etcd3|better-sqlite3|@grpc\/.*|prom-client)$/];

const loadedBy = (module: string) => [...staticGraph(resolve(SRC, module))];
const unwanted = (modules: string[]) => modules.filter((m) => NOT_FOR_AGENTS.some((re) => re.test(m)));

describe('what sriovd agent loads', () => {
  it('main.ts and the agent command load nothing of the controller, the stores, the API or the device plugin', () => {
    assert.deepEqual(unwanted(loadedBy('daemon/main.js')), []);
    assert.deepEqual(unwanted(loadedBy('daemon/agent-command.js')), []);
  });

  it('the controller command loads them (the check above can see them)', () => {
    const loaded = unwanted(loadedBy('daemon/controller.js'));
    for (const m of ['api/server.js', 'store/open.js', 'controller/control-plane.js', 'pkg:fastify', 'pkg:better-sqlite3']) assert.ok(loaded.includes(m), `controller.js loads ${m}`);
  });
});

describe("the agent's young generation", () => {
  it('is left alone when the operator sized it, on the command line or in NODE_OPTIONS', () => {
    assert.equal(youngGenerationSized([], ''), false);
    assert.equal(youngGenerationSized(['--max-old-space-size=200'], '--enable-source-maps'), false);
    assert.equal(youngGenerationSized(['--max-semi-space-size=4'], ''), true);
    assert.equal(youngGenerationSized([], '--enable-source-maps --max-semi-space-size=8'), true);
    assert.equal(youngGenerationSized([], '--semi-space-growth-factor=2'), true);
  });
});
