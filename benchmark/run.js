'use strict';
/**
 * `npm run bench`: every benchmark in turn; each prints a markdown section (copied into
 * docs/benchmarks.md) and records its measured figures, from which this writes the SVG charts that
 * docs/benchmarks.md shows: docs/charts/<chart>.svg, with each suite's figures kept beside them in
 * docs/charts/<suite>.results.jsonl (`node benchmark/charts.js docs/charts/*.results.jsonl`
 * re-renders them without measuring again).
 *
 * `npm run bench hdf5` runs only the suites named (their charts are rewritten, the others kept).
 * CHECKPOINTER_BENCH_SCALE=0.01 shrinks the data for a quick run; its charts go to a scratch
 * directory, not docs/charts. CHECKPOINTER_BENCH_CHARTS=<dir> writes the charts there instead.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { machine, SCALE } = require('./common');
const { writeCharts } = require('./charts');

const only = process.argv.slice(2);
const suites = ['npz.js', 'hdf5.js', 'dataset.js', 'reads.js', 'small-keys.js'].filter((s) => only.length === 0 || only.some((o) => s.startsWith(o)));
const chartDir = process.env.CHECKPOINTER_BENCH_CHARTS
  ?? (SCALE === 1 ? path.join(__dirname, '..', 'docs', 'charts') : path.join(os.tmpdir(), 'checkpointer-bench-charts'));
const meta = { type: 'meta', machine: machine(), date: new Date().toISOString().slice(0, 10), scale: SCALE };
console.log(`# checkpointer benchmarks\n\nMachine: ${meta.machine}\n`);
fs.mkdirSync(chartDir, { recursive: true });
let failed = false;
const charts = [];
for (const suite of suites) {
  const results = path.join(chartDir, `${path.basename(suite, '.js')}.results.jsonl`);
  // Measured into a scratch file first: a suite that fails leaves its previous figures and charts alone.
  const partial = `${results}.partial`;
  fs.writeFileSync(partial, `${JSON.stringify(meta)}\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, suite)], {
    stdio: 'inherit',
    env: { ...process.env, CHECKPOINTER_BENCH_SUITE: suite, CHECKPOINTER_BENCH_RESULTS: partial },
  });
  if (r.status !== 0) {
    failed = true;
    fs.rmSync(partial, { force: true });
    continue;
  }
  fs.renameSync(partial, results);
  charts.push(...writeCharts([results], chartDir));
}
if (charts.length) console.error(`Charts: ${charts.map((f) => path.relative(process.cwd(), f)).join(', ')}`);
process.exitCode = failed ? 1 : 0;
