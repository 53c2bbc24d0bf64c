/**
 * The web console: three static files, served without a token (the page
 * asks for one and sends it with its API calls). Only the files listed here
 * are served, so no request path ever reaches the file system.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { SriovError } from '../host/errors.js';

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

// The page loads only its own script and style, and talks only to this daemon.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** The compiled module is in dist/src/api/, the files stay in src/console/; run from source, they are next door. */
function consoleDir(): string {
  const fromDist = fileURLToPath(new URL('../../../src/console/', import.meta.url));
  return existsSync(fromDist) ? fromDist : fileURLToPath(new URL('../console/', import.meta.url));
}

export function consoleRoutes(app: FastifyInstance): void {
  const dir = consoleDir();
  for (const [path, { file, type }] of Object.entries(FILES)) {
    app.get(path, { config: { public: true }, schema: { hide: true } }, async (_request, reply) => {
      const body = await readFile(dir + file).catch(() => {
        throw new SriovError('NOT_FOUND', `console file ${file} is not installed (looked in ${dir})`);
      });
      return reply.type(type).headers(SECURITY_HEADERS).send(body);
    });
  }
}
