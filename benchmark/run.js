'use strict';
/** `npm run bench`: every benchmark in turn; each prints a markdown section (copied into docs/benchmarks.md). */
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { machine } = require('./common');

const only = process.argv.slice(2);
const suites = ['npz.js', 'hdf5.js', 'dataset.js', 'reads.js'].filter((s) => only.length === 0 || only.some((o) => s.startsWith(o)));
console.log(`# checkpointer benchmarks\n\nMachine: ${machine()}\n`);
let failed = false;
for (const suite of suites) {
  const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, suite)], { stdio: 'inherit', env: { ...process.env, CHECKPOINTER_BENCH_SUITE: suite } });
  if (r.status !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
