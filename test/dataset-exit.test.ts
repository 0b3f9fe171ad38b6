/**
 * Frames an open dataset handle has buffered reach the file when the process exits without
 * closing it (as they would with h5py, which writes each frame at once).
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('ds-exit-');
const entry = JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'));

function appendThenExit(file: string, exitHow: string): void {
  const script = `
const { Checkpointer } = require(${entry});
const chk = Checkpointer.fromFile(${JSON.stringify(file)});
const ds = chk.datasetSync('frames', { dtype: 'float64', shape: [0, 3] });
for (let i = 0; i < 10; i++) ds.appendSync(Float64Array.of(i, i + 0.5, -i));
${exitHow}`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

describe('dataset handles at process exit', () => {
  for (const [ext, read] of [
    ['.h5', "import h5py; a = h5py.File(sys.argv[1], 'r')['frames'][()]"],
    ['.npy', 'a = np.load(sys.argv[1])'],
    ['.npz', "a = np.load(sys.argv[1])['frames']"],
  ] as const) {
    for (const exitHow of ['process.exit(0);', '/* falls off the end */']) {
      it(`${ext}: buffered frames are in the file after ${exitHow.startsWith('process') ? 'process.exit()' : 'a natural exit'}`, () => {
        const file = path.join(dir, `f${Math.random().toString(36).slice(2)}${ext}`);
        appendThenExit(file, exitHow);
        const back = runPython(`
import sys, json, numpy as np
${read}
print(json.dumps({"shape": list(a.shape), "last": a[-1].tolist()}))`, file);
        assert.deepEqual(back.shape, [10, 3]);
        assert.deepEqual(back.last, [9, 9.5, -9]);
      });
    }
  }
});
