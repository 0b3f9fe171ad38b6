#!/usr/bin/env node
'use strict';
/**
 * What prebuildify runs in place of node-gyp (`--node-gyp`), since it has no cmake-js backend.
 * It is called as `<shim> rebuild --target=<node version> --devdir=... --arch=<arch> --release`
 * and must leave the addon in build/Release/. It builds against the static HDF5 of
 * scripts/build-hdf5.sh, with cmake-js configure + build: never cmake-js rebuild or clean, which
 * delete all of build/ and the HDF5 prefix in build/deps/ with it.
 */
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`prebuild-gyp-shim: only "rebuild" is supported, not ${args.join(' ')}`);
  process.exit(2);
}
const arch = args.find((a) => a.startsWith('--arch='))?.slice('--arch='.length) ?? process.arch;
const debug = args.includes('--debug');
const prefix = path.join(root, 'build', 'deps', 'hdf5-1.14.5');
const zlib = process.env.CHECKPOINTER_ZLIB || 'host';

const cmakeJs = (cmd, extra = []) =>
  execFileSync('npx', ['--no-install', 'cmake-js', cmd, `--arch=${arch}`, ...(debug ? ['--debug'] : []), '--log-level', 'warn', ...extra], {
    cwd: root,
    stdio: 'inherit',
  });
cmakeJs('configure', [`--CDCHECKPOINTER_HDF5_ROOT=${prefix}`, `--CDCHECKPOINTER_ZLIB=${zlib}`]);
cmakeJs('build');
