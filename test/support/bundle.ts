/** A test's helper program in TypeScript, bundled as the product is (esbuild, one CommonJS file for Node 20+). */
import { build } from 'esbuild';
import { join } from 'node:path';
import { ROOT } from './env.js';

export async function bundleFixture(entry: string, outfile: string): Promise<string> {
  await build({
    entryPoints: [join(ROOT, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['pg-native'],
    logLevel: 'warning',
  });
  return outfile;
}
