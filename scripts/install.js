#!/usr/bin/env node
'use strict';
/**
 * npm's "install" script: makes sure the HDF5 addon loads, and never fails the install.
 *
 * 1. A prebuild that fits (prebuilds/<platform>-<arch>/node.napi.<libc>.node, HDF5 inside) or an
 *    earlier build in build/Release loads: done, nothing is downloaded or compiled.
 * 2. Otherwise (macOS, musl, arm64, a glibc older than the prebuild's) build from source, when
 *    cmake and a C++17 compiler are there: against the system's HDF5 1.10–1.14 if CMake finds it,
 *    else against HDF5 1.14.5 built by scripts/build-hdf5.sh (Debian and derivatives: it takes
 *    Debian's source packages). cmake-js is fetched for this build only (`npm exec`), so
 *    prebuild users never download it.
 * 3. If that is not possible, the install still succeeds: JSON and npz checkpoints work, and
 *    .h5 ones throw ERR_HDF5_UNAVAILABLE saying what is missing (hdf5Info() tells it up front).
 *    What was tried is kept in build/checkpointer-install.log, which that error points to.
 *
 * Environment:
 *   CHECKPOINTER_BUILD_FROM_SOURCE=1   build even when a prebuild loads (also npm's --build-from-source)
 *   CHECKPOINTER_HDF5=auto|system|bundled   which HDF5 a source build uses (default auto)
 *   CHECKPOINTER_ZLIB=host|static      bundled HDF5: Node's zlib (default) or a static zlib
 *   CHECKPOINTER_SKIP_INSTALL=1        do nothing (the addon stays as it is)
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const buildDir = path.join(root, 'build');
const logFile = path.join(buildDir, 'checkpointer-install.log');
const CMAKE_JS = 'cmake-js@^8.0.0';

function say(msg) {
  console.log(`checkpointer: ${msg}`);
}

function log(text) {
  fs.mkdirSync(buildDir, { recursive: true });
  fs.appendFileSync(logFile, text.endsWith('\n') ? text : `${text}\n`);
}

/** Runs a command with its output appended to the log; true when it succeeded. */
function run(cmd, args, env = {}) {
  log(`\n$ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.stdout) log(r.stdout);
  if (r.stderr) log(r.stderr);
  if (r.error) log(String(r.error));
  return r.status === 0;
}

function have(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Whether the addon that node-gyp-build picks loads and works, in a child process (a broken
 * binary must not take the install down). Returns { ok, detail }.
 */
function probe(env = {}) {
  const code = `
    const p = require('node-gyp-build').path(${JSON.stringify(root)});
    const a = require(p);
    process.stdout.write(JSON.stringify({ path: p, version: a.hdf5Version, build: a.hdf5Build }));`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });
  if (r.status === 0) {
    try {
      return { ok: true, detail: JSON.parse(r.stdout) };
    } catch {
      // fall through: unexpected output is a failure
    }
  }
  // The first line of the error message (`Error: ...`), not the source line Node prints above it.
  const why = (r.stderr || '').split('\n').find((l) => /^\s*(\w*Error)(\s\[\w+\])?: /.test(l)) || `exit ${r.status}`;
  return { ok: false, detail: why.trim() };
}

function cmakeJs(args) {
  // --yes: fetch cmake-js into npm's cache without asking; only source builds get here.
  return run('npm', ['exec', '--yes', `--package=${CMAKE_JS}`, '--', 'cmake-js', ...args, '--log-level', 'warn']);
}

function configureAndBuild(hdf5Root, zlib) {
  const defs = [`--CDCHECKPOINTER_HDF5_ROOT=${hdf5Root || 'OFF'}`, `--CDCHECKPOINTER_ZLIB=${zlib}`];
  return cmakeJs(['configure', ...defs]) && cmakeJs(['build']);
}

function buildFromSource() {
  const missing = [];
  if (!have('cmake')) missing.push('cmake');
  if (!have(process.env.CXX || 'c++')) missing.push('a C++17 compiler (g++ or clang++)');
  if (missing.length) return { ok: false, why: `${missing.join(' and ')} not found` };

  const choice = process.env.CHECKPOINTER_HDF5 || 'auto';
  const zlib = process.env.CHECKPOINTER_ZLIB || 'host';
  if (!['auto', 'system', 'bundled'].includes(choice)) return { ok: false, why: `CHECKPOINTER_HDF5=${choice} is not auto, system or bundled` };

  if (choice !== 'bundled') {
    say('building the HDF5 addon from source against the system HDF5 (log: build/checkpointer-install.log)');
    if (configureAndBuild(null, zlib)) return { ok: true };
    if (choice === 'system') return { ok: false, why: 'the build against the system HDF5 failed (is its development package installed?)' };
  }
  if (!have('apt-get', ['--version'])) {
    return { ok: false, why: 'no system HDF5 was found, and HDF5 can be built here only on Debian/Ubuntu (apt-get source)' };
  }
  say('building HDF5 1.14.5 from Debian\'s sources, then the addon (a few minutes; log: build/checkpointer-install.log)');
  if (!run('bash', [path.join(__dirname, 'build-hdf5.sh')])) return { ok: false, why: 'scripts/build-hdf5.sh failed' };
  if (configureAndBuild(path.join(buildDir, 'deps', 'hdf5-1.14.5'), zlib)) return { ok: true };
  return { ok: false, why: 'the build against the bundled HDF5 failed' };
}

function main() {
  if (process.env.CHECKPOINTER_SKIP_INSTALL === '1') return;
  fs.rmSync(logFile, { force: true });
  const force = process.env.CHECKPOINTER_BUILD_FROM_SOURCE === '1' || process.env.npm_config_build_from_source === 'true';
  const target = `${process.platform}-${process.arch}`;

  if (!force) {
    const p = probe();
    if (p.ok) {
      say(`HDF5 ${p.detail.version} (${p.detail.build}) from ${path.relative(root, p.detail.path)}`);
      return;
    }
    log(`no loadable addon for ${target} (node ${process.version}): ${p.detail}`);
  }
  const built = buildFromSource();
  const p = built.ok ? probe() : { ok: false, detail: built.why };
  if (p.ok) {
    say(`built the addon: HDF5 ${p.detail.version} (${p.detail.build}) from ${path.relative(root, p.detail.path)}`);
    return;
  }
  log(`source build: ${p.detail}`);
  say(
    `HDF5 (.h5/.hdf5) support is not available on ${target}: ${p.detail}.\n` +
      '  JSON and NumPy (.npz/.npy) checkpoints work. For HDF5 install cmake, a C++ compiler and your\n' +
      '  system\'s HDF5 development package (apt-get install cmake g++ libhdf5-dev; brew install cmake hdf5;\n' +
      '  apk add cmake g++ hdf5-dev), then run `npm rebuild checkpointer`.',
  );
}

try {
  main();
} catch (err) {
  // Never fail the install over the optional HDF5 addon.
  say(`install step failed (${err && err.message}); HDF5 support may be unavailable`);
}
