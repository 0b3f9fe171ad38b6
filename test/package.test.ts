/**
 * The published entry points: `require('checkpointer')` and `import ... from 'checkpointer'` both
 * work from a project that depends on the package, and share one module instance.
 */
import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/python';

const root = path.resolve(__dirname, '..', '..');
const project = tempDir('checkpointer-consumer-');
fs.mkdirSync(path.join(project, 'node_modules'));
fs.symlinkSync(root, path.join(project, 'node_modules', 'checkpointer'), 'dir');

function run(file: string, code: string): string {
  fs.writeFileSync(path.join(project, file), code);
  return execFileSync(process.execPath, [path.join(project, file)], { cwd: project, encoding: 'utf8' }).trim();
}

describe('package entry points', () => {
  it("require('checkpointer') gives a working checkpointer", () => {
    const out = run('use.cjs', `
const { Checkpointer, JSONCheckpointer, ndarray } = require('checkpointer');
const file = require('node:path').join(__dirname, 'cjs.json');
const chk = Checkpointer.fromFile(file);
chk.setSync('x', ndarray(new Float64Array([1, 2])));
console.log(chk instanceof JSONCheckpointer, JSON.stringify(chk.getSync('x')));`);
    assert.equal(out, 'true [1,2]');
  });

  it("import from 'checkpointer' gives the same classes as require", () => {
    const out = run('use.mjs', `
import { createRequire } from 'node:module';
import def, { Checkpointer, NumPyCheckpointer, CheckpointerError } from 'checkpointer';
const cjs = createRequire(import.meta.url)('checkpointer');
console.log(Checkpointer === cjs.Checkpointer, def.NumPyCheckpointer === NumPyCheckpointer, typeof CheckpointerError);`);
    assert.equal(out, 'true true function');
  });

  it('ships type declarations', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    assert.ok(fs.existsSync(path.join(root, pkg.exports['.'].types)));
  });
});
