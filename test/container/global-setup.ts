/**
 * Builds the stand-in base images and the image under test once per run of the container
 * tests, before any test file starts (they share the image). Each step is cached: a run with
 * nothing changed takes seconds.
 */
import { buildImage, MAJORS } from './support.js';

export default async function setup(): Promise<void> {
  const { standInsMs, imageMs } = await buildImage();
  process.stderr.write(`container tests: stand-ins ready in ${(standInsMs / 1000).toFixed(1)} s, image built for PostgreSQL ${MAJORS.join(', ')} in ${(imageMs / 1000).toFixed(1)} s\n`);
}
