/**
 * The web console: the files Vite built into dist/console, served under /ui/
 * without a token (the page asks for one and sends it with its API calls).
 * The file list is read once at start, so no request path ever reaches the
 * file system; every other /ui/ path is a page of the console and gets its
 * index.html (the page routes in the browser).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { SriovError } from '../host/errors.js';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
};

// The page loads only its own scripts and styles, and talks only to this daemon.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/** dist/console, beside dist/src/api/ where this module runs from. */
const CONSOLE_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

interface Asset {
  body: Buffer;
  type: string;
}

function readAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const assetDir = join(dir, 'assets');
  if (!existsSync(assetDir)) return assets;
  for (const name of readdirSync(assetDir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { body: readFileSync(join(assetDir, name)), type });
  }
  return assets;
}

export function consoleRoutes(app: FastifyInstance, dir = CONSOLE_DIR): void {
  const index = existsSync(join(dir, 'index.html')) ? readFileSync(join(dir, 'index.html')) : null;
  const assets = readAssets(dir);
  const route = { config: { public: true }, schema: { hide: true } };

  app.get('/', route, async (_request, reply) => reply.redirect('/ui/'));
  // Hashed names never change content: cache them for a year.
  app.get<{ Params: { name: string } }>('/ui/assets/:name', route, async (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset) throw new SriovError('NOT_FOUND', `console asset ${request.params.name} does not exist`);
    return reply.type(asset.type).headers({ ...SECURITY_HEADERS, 'cache-control': 'public, max-age=31536000, immutable' }).send(asset.body);
  });
  app.get('/ui/*', route, async (_request, reply) => {
    if (!index) throw new SriovError('NOT_FOUND', `the console is not built (no ${dir}index.html); run npm run build:console`);
    return reply.type('text/html; charset=utf-8').headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' }).send(index);
  });
}
