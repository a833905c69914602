#!/usr/bin/env node
// bench/RESULTS.md is where every result is written down. bench/run.mjs rewrites it on each run;
// the other benchmarks keep their full reports in RESULTS-*.md. This keeps, at the end of
// RESULTS.md between two markers, the headline of each of those reports (its first table and
// its verdict lines), so that one file has them all. Every benchmark calls refreshSummary()
// after writing its report; `node bench/summary.mjs` does it by hand.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = resolve(fileURLToPath(import.meta.url), '..');
const START = '<!-- summaries:start -->';
const END = '<!-- summaries:end -->';

/** The report's first table, with the sentence that introduces where and when it was measured. */
function headline(text) {
  const lines = text.split('\n');
  const measured = lines.find((l) => /^(Measured|Written by) /.test(l)) ?? '';
  const first = lines.findIndex((l) => l.startsWith('|'));
  const table = [];
  for (let i = first; i >= 0 && i < lines.length && lines[i].startsWith('|'); i++) table.push(lines[i]);
  const verdicts = lines.filter((l) => /\*\*Consistency:|^Target:/.test(l));
  return [measured, '', ...table, ...(verdicts.length ? ['', ...verdicts] : [])].join('\n');
}

const REPORTS = [
  ['RESULTS-image.md', 'Image size (`npm run bench:image`)'],
  ['RESULTS-load.md', 'Replication lag under pgbench load, failover consistency (`npm run bench:load`)'],
  ['RESULTS-durability.md', 'Acknowledged commits lost at failover, async vs sync (`npm run bench:durability`)'],
  ['RESULTS-failover.md', 'Automatic failover, switchover, clean stop: pgrepl and Patroni on the same etcd (`npm run bench:failover`)'],
];

export function summaries() {
  const parts = [];
  for (const [file, title] of REPORTS) {
    const path = join(HERE, file);
    if (!existsSync(path)) continue;
    parts.push(`### ${title}`, '', `From [${file}](${file}):`, '', headline(readFileSync(path, 'utf8')), '');
  }
  return [START, '', ...parts, END].join('\n');
}

/** Rewrites the summaries section of RESULTS.md (appending it if it is not there yet). */
export function refreshSummary(resultsFile = join(HERE, 'RESULTS.md')) {
  if (!existsSync(resultsFile)) return;
  const text = readFileSync(resultsFile, 'utf8');
  const i = text.indexOf(START);
  const j = text.indexOf(END);
  const section = summaries();
  const next = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + END.length) : `${text.trimEnd()}\n\n## Other benchmarks\n\n${section}\n`;
  writeFileSync(resultsFile, next);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) refreshSummary();
