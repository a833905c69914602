#!/usr/bin/env node
// Measures what pgrepl adds to the postgres base image, uncompressed (podman's image size) and
// compressed (the gzip'd layers a registry would store), and writes bench/RESULTS-image.md.
// Needs the container test setup: `npm run test:container` builds the stand-in base images and
// the images (localhost/pgrepl-test:pg15, :pg18); BENCH_PG_MAJORS="15 18" chooses the majors.
// Its headline also goes into bench/RESULTS.md (bench/summary.mjs).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { refreshSummary } from './summary.mjs';

const root = resolve(import.meta.dirname, '..');
const env = { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF || join(root, '.tmp', 'container', 'containers.conf') };
// The image for each PostgreSQL major the container tests built, against its base image.
const majors = (process.env.BENCH_PG_MAJORS || '15 18').split(/[\s,]+/).filter(Boolean);
const podman = (...args) => execFileSync('podman', args, { env, encoding: 'utf8' }).trim();
const exists = (ref) => {
  try {
    podman('image', 'exists', ref);
    return true;
  } catch {
    return false;
  }
};
const size = (ref) => Number(podman('image', 'inspect', '--format', '{{.Size}}', ref));
const layers = (ref) => JSON.parse(podman('image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref));

/** gzip'd size of the image's layers that the base does not have (pushed to an OCI directory). */
function compressedAdded(image, base) {
  const dir = mkdtempSync(join(tmpdir(), 'pgrepl-oci-'));
  try {
    podman('push', '--compress', image, `oci:${dir}/img`);
    const blobs = join(dir, 'img', 'blobs', 'sha256');
    const index = JSON.parse(readFileSync(join(dir, 'img', 'index.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(join(blobs, index.manifests[0].digest.split(':')[1]), 'utf8'));
    const baseCount = layers(base).length;
    const added = manifest.layers.slice(baseCount);
    return added.reduce((n, l) => n + l.size, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const MB = (n) => (n / 1e6).toFixed(1);
const rows = [];
for (const major of majors) {
  const image = `localhost/pgrepl-test:pg${major}`;
  const base = `docker.io/library/postgres:${major}`;
  if (!exists(image) || !exists(base)) {
    process.stderr.write(`skipping PostgreSQL ${major}: ${image} or ${base} is not built (npm run test:container builds them)\n`);
    continue;
  }
  const imageSize = size(image);
  const baseSize = size(base);
  rows.push({ major, image, base, imageSize, baseSize, added: imageSize - baseSize, compressed: compressedAdded(image, base) });
}
if (rows.length === 0) throw new Error('no image to measure: run npm run test:container first');

const table = [
  '| PostgreSQL | base image (local stand-in of the official one) | pgrepl image | added, uncompressed | added, compressed (gzip\'d layers, as a registry stores them) | target <= +60 MB |',
  '|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.major} | \`${r.base}\` ${MB(r.baseSize)} MB | \`${r.image}\` ${MB(r.imageSize)} MB | ${MB(r.added)} MB (${r.added} bytes) | ${MB(r.compressed)} MB | ${r.added <= 60e6 ? 'met' : '**not met**'} |`),
].join('\n');
const why = `Almost all of it is the Node 24 binary (stripped); the bundle is under 1 MB. A Node runtime
smaller than that would mean a custom build of Node (e.g. without ICU and the inspector), which
the official node images do not ship; compressing the binary (UPX) would trade it for a
decompression on every start of every \`pgrepl\` command (archive-wal runs once per WAL segment),
and is not in Debian bookworm's main archive here to measure. Debian's own nodejs package would
share ICU and OpenSSL with PostgreSQL (already in the image) and be far smaller, but it is at
Node 24 only in forky/sid, while the official postgres images are built on bookworm and trixie.`;
const measured = `Measured ${new Date().toISOString().slice(0, 10)} with \`npm run bench:image\` (podman ${podman('--version').replace('podman version ', '')}).`;
const text = `# Image size\n\n${measured}\n\n${table}\n\n${why}\n`;
writeFileSync(join(root, 'bench', 'RESULTS-image.md'), text);

refreshSummary(); // and its headline in RESULTS.md
process.stdout.write(text);
