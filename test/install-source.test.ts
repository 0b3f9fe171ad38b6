/**
 * The install step where no prebuild fits (scripts/install.js): the installed package with its
 * prebuilds removed stands for macOS, musl or arm64. Without a compiler the install still
 * succeeds, says what to install, and leaves JSON/npz working with an ERR_HDF5_UNAVAILABLE that
 * names the install log; with cmake, a compiler and the system's HDF5 it builds the addon from
 * source (cmake-js fetched for that build only) and HDF5 works.
 */
import { before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { h5py } from './helpers/h5py';
import { tempDir } from './helpers/python';

const ROOT = path.resolve(__dirname, '..', '..');
const tmp = tempDir('checkpointer-install-source-');
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** This environment without npm's, the test runner's or our own settings. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || /^(NODE_OPTIONS|NODE_TEST_CONTEXT|NODE_PATH|PREBUILDS_ONLY|CXX)$/.test(k) || /^CHECKPOINTER_/.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

const USE = `
const c = require('checkpointer');
(async () => {
  const info = c.hdf5Info();
  const out = { info, json: null, h5: null, error: null };
  const j = new c.JSONCheckpointer(process.argv[2] + '/state.json');
  await j.set('step', 3);
  out.json = await j.get('step');
  try {
    const h = new c.HDF5Checkpointer(process.argv[2] + '/state.h5');
    const ds = await h.dataset('x', { dtype: 'float64', shape: [0, 4], compression: 'gzip', shuffle: true });
    await ds.append(c.ndarray(Float64Array.from({ length: 40 }, (_, i) => i), [10, 4]));
    await ds.close();
    out.h5 = Array.from((await h.get('x')).data);
  } catch (e) { out.error = { code: e.code, message: e.message }; }
  console.log(JSON.stringify(out));
})();`;

describe('install where no prebuild fits', { skip: process.platform !== 'linux' ? 'Linux only' : false }, () => {
  let project: string;
  let pkg: string;
  const use = () => {
    const r = spawnSync(process.execPath, ['use.cjs', project], { cwd: project, encoding: 'utf8', env: cleanEnv() });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const rebuild = (env: Record<string, string> = {}) =>
    spawnSync('npm', ['rebuild', 'checkpointer', '--foreground-scripts', '--loglevel=error'], {
      cwd: project, encoding: 'utf8', env: cleanEnv(env), timeout: 600_000,
    });

  before(() => {
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8' });
    const tarball = path.join(tmp, (JSON.parse(out) as { filename: string }[])[0]!.filename);
    project = path.join(tmp, 'consumer');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--ignore-scripts', tarball], { cwd: project, env: cleanEnv() });
    pkg = path.join(project, 'node_modules', 'checkpointer');
    fs.rmSync(path.join(pkg, 'prebuilds'), { recursive: true });
    fs.writeFileSync(path.join(project, 'use.cjs'), USE);
  }, { timeout: 120_000 });

  it('without a compiler: the install succeeds and says what to install; JSON works, HDF5 names the log', () => {
    const r = rebuild({ CXX: '/nonexistent/c++' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /HDF5 \(\.h5\/\.hdf5\) support is not available on linux-/);
    assert.match(r.stdout, /C\+\+17 compiler/);
    assert.match(r.stdout, /npm rebuild checkpointer/);
    const log = path.join(pkg, 'build', 'checkpointer-install.log');
    assert.match(fs.readFileSync(log, 'utf8'), /No native build was found[\s\S]*compiler/);
    assert.ok(!fs.existsSync(path.join(pkg, 'build', 'Release')));
    const out = use();
    assert.equal(out.json, 3);
    assert.equal(out.info.available, false);
    assert.equal(out.error.code, 'ERR_HDF5_UNAVAILABLE');
    assert.equal(out.error.message, out.info.reason);
    assert.ok(out.error.message.includes(log), out.error.message);
    assert.match(out.error.message, /libhdf5-dev/);
  });

  it('with cmake, a compiler and the system HDF5: builds from source and HDF5 works', { timeout: 600_000 }, (t) => {
    if (spawnSync('cmake', ['--version']).status !== 0) return t.skip('no cmake');
    const r = rebuild();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /built the addon: HDF5 \d+\.\d+\.\d+ \(system\) from build\/Release\//, r.stdout);
    const out = use();
    assert.equal(out.error, null, JSON.stringify(out.error));
    assert.equal(out.info.build, 'system');
    assert.equal(out.info.version, h5py<string>('out(h5py.version.hdf5_version)'), 'the same libhdf5 as Debian\'s h5py');
    assert.deepEqual(out.h5, Array.from({ length: 40 }, (_, i) => i));
    assert.deepEqual(h5py(`out(h5py.File(sys.argv[1], 'r')['x'][()].ravel().tolist())`, path.join(project, 'state.h5')), out.h5);
  });
});
