#!/usr/bin/env node
'use strict';
/**
 * Builds the addon with cmake-js and copies it to prebuilds/<platform>-<arch>/node.napi.<libc>.node,
 * the name prebuildify gives a Node-API build and node-gyp-build picks for any Node version with
 * Node-API 8 (tags: runtime "node", "napi", libc). The prebuild links libhdf5 dynamically
 * (Debian's libhdf5_serial.so.103), so the machine that loads it still needs libhdf5 1.10.8.
 *
 *   node scripts/prebuild.js [--no-build]
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'checkpointer_native.node');

function libc() {
  if (process.platform !== 'linux') return null;
  return fs.existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
}

if (!process.argv.includes('--no-build')) {
  execFileSync('npx', ['--no-install', 'cmake-js', 'compile', '--log-level', 'warn'], { cwd: root, stdio: 'inherit' });
}
if (!fs.existsSync(built)) {
  console.error(`prebuild: ${built} is missing`);
  process.exit(1);
}

const dir = path.join(root, 'prebuilds', `${os.platform()}-${os.arch()}`);
const tags = ['node', 'napi', libc()].filter(Boolean).join('.');
const target = path.join(dir, `${tags}.node`);
fs.mkdirSync(dir, { recursive: true });
for (const f of fs.readdirSync(dir)) if (f.endsWith('.node')) fs.rmSync(path.join(dir, f));
fs.copyFileSync(built, target);
// Debug symbols are not needed in the shipped binary.
const strip = spawnSync('strip', ['--strip-unneeded', target], { stdio: 'ignore' });
if (strip.status !== 0) console.warn('prebuild: strip failed or missing; keeping symbols');

// Prove node-gyp-build finds and loads it without the build/ directory.
const check = spawnSync(process.execPath, ['-e', `
  const p = require('node-gyp-build').path(${JSON.stringify(root)});
  const a = require(p);
  console.log(p + ' (HDF5 ' + a.hdf5Version + ')');`], { cwd: root, env: { ...process.env, PREBUILDS_ONLY: '1' }, encoding: 'utf8' });
if (check.status !== 0) {
  console.error(`prebuild: the prebuild does not load:\n${check.stderr}`);
  process.exit(1);
}
console.log(`prebuild: ${path.relative(root, target)} loads as ${check.stdout.trim()}`);
