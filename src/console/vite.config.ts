/**
 * The console's build: Preact through Vite's own JSX transform (oxc), so no
 * Babel plugin is needed. `npm ci` runs it (the `prepare` script); the daemon
 * serves dist/console under /ui/.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../../dist/console/', import.meta.url)),
    emptyOutDir: true,
    // The daemon's CSP has no 'unsafe-inline': every asset is a file.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
});
