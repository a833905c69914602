#!/usr/bin/env node
// Measures what pgrepl adds to the postgres base image, uncompressed (podman's image size) and
// compressed (the gzip'd layers a registry would store), and writes bench/RESULTS-image.md.
// Needs the container test setup: `npm run test:container` builds the stand-in base image and
// the image (localhost/pgrepl-test:pg15); or set PGREPL_TEST_IMAGE / BASE_IMAGE.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const env = { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF || join(root, '.tmp', 'container', 'containers.conf') };
const image = process.env.PGREPL_TEST_IMAGE || 'localhost/pgrepl-test:pg15';
const base = process.env.BASE_IMAGE || 'docker.io/library/postgres:15';
const podman = (...args) => execFileSync('podman', args, { env, encoding: 'utf8' }).trim();

const size = (ref) => Number(podman('image', 'inspect', '--format', '{{.Size}}', ref));
const layers = (ref) => JSON.parse(podman('image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref));

/** gzip'd size of the image's layers that the base does not have (pushed to an OCI directory). */
function compressedAdded() {
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
const imageSize = size(image);
const baseSize = size(base);
const added = imageSize - baseSize;
const compressed = compressedAdded();
const text = `# Image size

Measured ${new Date().toISOString().slice(0, 10)} with \`node bench/image-size.mjs\` (podman ${podman('--version').replace('podman version ', '')}).

| | bytes | MB |
|---|---|---|
| base image \`${base}\` (local stand-in of the official image) | ${baseSize} | ${MB(baseSize)} |
| pgrepl image \`${image}\` | ${imageSize} | ${MB(imageSize)} |
| added, uncompressed | ${added} | ${MB(added)} |
| added, compressed (gzip'd layers, as a registry stores them) | ${compressed} | ${MB(compressed)} |

Target: at most +60 MB uncompressed for the Node runtime and the bundle: **${added <= 60e6 ? 'met' : 'not met'}**.
Almost all of it is the Node 24 binary (stripped); the bundle is under 1 MB. A Node runtime
smaller than that would mean a custom build of Node (e.g. without ICU and the inspector),
which the official node images do not ship.
`;
writeFileSync(join(root, 'bench', 'RESULTS-image.md'), text);
process.stdout.write(text);
