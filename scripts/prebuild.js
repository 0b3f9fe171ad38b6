#!/usr/bin/env node
'use strict';
/**
 * Makes the committed prebuild: prebuilds/<platform>-<arch>/checkpointer.<libc>.node, with
 * HDF5 1.14.5 linked in (scripts/build-hdf5.sh), so that `npm install` needs neither a compiler
 * nor a libhdf5. prebuildify (--napi --strip --tag-libc) names it: package name + libc, no ABI
 * tag (a Node-API build), so node-gyp-build picks it for every Node version on glibc Linux x64
 * (engines: Node >= 20, all with Node-API 8). prebuildify builds through scripts/prebuild-gyp-shim.js
 * (cmake-js). The licences of what is inside go beside it. Then it checks what it made: it loads
 * with PREBUILDS_ONLY=1 and links nothing but the C and C++ runtimes.
 *
 *   node scripts/prebuild.js
 */
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const prebuildify = require('prebuildify');

const root = path.resolve(__dirname, '..');
const prefix = path.join(root, 'build', 'deps', 'hdf5-1.14.5');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

execFileSync('bash', [path.join(__dirname, 'build-hdf5.sh')], { cwd: root, stdio: 'inherit' });
fs.rmSync(dir, { recursive: true, force: true });

prebuildify(
  {
    cwd: root,
    napi: true,
    strip: true,
    tagLibc: true,
    nodeGyp: path.join(__dirname, 'prebuild-gyp-shim.js'), // executable; its shebang runs node
  },
  (err) => {
    if (err) {
      console.error(`prebuild: ${err.message}`);
      process.exit(1);
    }
    finish();
  },
);

function finish() {
  const built = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
  if (built.length !== 1) throw new Error(`prebuild: expected one .node in ${dir}, found ${built.join(', ') || 'none'}`);
  const target = path.join(dir, built[0]);

  // What the binary carries, under the names the packages give their licences. zlib is not in it
  // (it binds to the zlib of the Node process) unless built with CHECKPOINTER_ZLIB=static.
  const licenses = path.join(dir, 'licenses');
  fs.mkdirSync(licenses, { recursive: true });
  const undefinedZlib = /\bU inflate\b/.test(spawnSync('nm', ['-D', '--undefined-only', target], { encoding: 'utf8' }).stdout ?? '');
  for (const f of fs.readdirSync(path.join(prefix, 'share', 'licenses'))) {
    if (f.startsWith('zlib') && undefinedZlib) continue;
    fs.copyFileSync(path.join(prefix, 'share', 'licenses', f), path.join(licenses, f));
  }
  const settings = fs.readFileSync(path.join(prefix, 'lib', 'libhdf5.settings'), 'utf8');
  fs.writeFileSync(
    path.join(licenses, 'README.md'),
    [
      `# What ${path.relative(root, target)} contains`,
      '',
      '- HDF5 1.14.5 (Debian source package hdf5 1.14.5+repack-3), BSD-style licence: HDF5-COPYING,',
      '  HDF5-COPYING_LBNL_HDF5.',
      fs.existsSync(path.join(licenses, 'libaec-copyright'))
        ? '- libaec (the szip filter), BSD-2-Clause: libaec-copyright.'
        : '- no szip filter.',
      undefinedZlib
        ? "- no zlib: deflate calls bind to the zlib of the Node process that loads the addon (Node's own, or the system's libz)."
        : '- zlib 1.2.13, zlib licence: zlib-LICENSE.',
      ...(fs.existsSync(path.join(licenses, 'zstd-LICENSE'))
        ? ['- zstd 1.5.4 (Debian source package libzstd 1.5.4+dfsg2-5; the zstd filter, id 32015), BSD-3-Clause: zstd-LICENSE.'] : []),
      ...(fs.existsSync(path.join(licenses, 'lz4-LICENSE'))
        ? ['- lz4 1.9.4 (Debian source package lz4 1.9.4-1; the lz4 filter, id 32004), BSD-2-Clause: lz4-LICENSE.'] : []),
      '',
      `Built by scripts/prebuild.js; HDF5 configured as: ${/Threadsafety:\s*(\S+)/.exec(settings)?.[1] === 'ON' ? 'thread-safe' : 'not thread-safe'}.`,
      '',
    ].join('\n'),
  );

  const check = spawnSync(process.execPath, ['-e', `
    const p = require('node-gyp-build').path(${JSON.stringify(root)});
    const a = require(p);
    console.log(JSON.stringify({ p, version: a.hdf5Version, build: a.hdf5Build }));`], {
    cwd: root,
    env: { ...process.env, PREBUILDS_ONLY: '1' },
    encoding: 'utf8',
  });
  if (check.status !== 0) throw new Error(`prebuild: it does not load:\n${check.stderr}`);
  const loaded = JSON.parse(check.stdout);
  if (loaded.p !== target || loaded.build !== 'bundled') throw new Error(`prebuild: node-gyp-build picked ${check.stdout}`);
  const libs = (spawnSync('ldd', [target], { encoding: 'utf8' }).stdout ?? '').match(/^\s*\S+\.so\S*/gm)?.map((s) => s.trim()) ?? [];
  const extra = libs.filter((l) => !/^(linux-vdso|\/lib64\/ld-linux|libc\.so|libm\.so|libgcc_s\.so|libstdc\+\+\.so)/.test(l));
  if (extra.length) throw new Error(`prebuild: links more than the C/C++ runtime: ${extra.join(', ')}`);
  const glibc = (spawnSync('objdump', ['-T', target], { encoding: 'utf8' }).stdout ?? '').match(/GLIBC_[0-9.]+/g) ?? [];
  const floor = glibc.map((g) => g.slice(6)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop();
  console.log(`prebuild: ${path.relative(root, target)}: HDF5 ${loaded.version}, links ${libs.join(' ')}; needs glibc >= ${floor}`);
}
