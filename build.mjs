// Bundles src/main.ts into one self-contained CommonJS file, dist/pgrepl.cjs, that runs with no
// node_modules (the image copies only this file and a Node runtime).
import { build } from 'esbuild';

await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/pgrepl.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // pg tries to load the optional native binding; we never use it.
  external: ['pg-native'],
  banner: { js: '#!/usr/bin/env node' },
  sourcemap: false,
  minify: false,
  legalComments: 'none',
  logLevel: 'warning',
});
