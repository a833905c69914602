// Bundles src/main.ts into one self-contained CommonJS file, dist/pgrepl.cjs, that runs with no
// node_modules (the image copies only this file and a Node runtime).
import { readFileSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const out = 'dist/pgrepl.cjs';

await build({
  entryPoints: ['src/main.ts'],
  outfile: out,
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

// esbuild escapes non-ASCII characters in strings and identifiers, but keeps some comments as they
// are: one non-ASCII character makes Node decode the whole file as UTF-8 into a two-byte string,
// which costs every start a few ms (a quarter of reading and compiling it). \uXXXX means the same
// character in a comment, a string, a regular expression or an identifier.
const text = readFileSync(out, 'utf8');
const ascii = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
if (ascii !== text) writeFileSync(out, ascii);
