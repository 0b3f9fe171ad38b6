'use strict';
/**
 * Many small keys (issue 11): 10,000 scalars + 1,000 float64 [16, 16] arrays (11,000 keys) written
 * in one scope and read back key by key, in .npz (stored and deflated), JSON and HDF5, against
 * numpy.savez / savez_compressed / numpy.load, Python's json and h5py on the same data; and what
 * adding one key to a 100,000-key .npz costs. tmpfs only (the figures are about per-key work,
 * not the disk); CHECKPOINTER_BENCH_REFLINK_DIR=<folder on btrfs/XFS> adds the add-one-key rounds
 * on a filesystem with reflinks.
 *
 * Run: `npm run build:ts && node benchmark/small-keys.js` (or `npm run bench small-keys`).
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { PYTHON, chart, fmt, scaled } = require('./common');

const { NumPyCheckpointer, JSONCheckpointer, HDF5Checkpointer, hdf5Info, ndarray } = require(path.resolve(__dirname, '..', 'dist'));

const SCALARS = scaled(10_000, 10);
const ARRAYS = scaled(1_000, 1);
const KEYS = SCALARS + ARRAYS;
const BIG_KEYS = scaled(100_000, 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const dir = fs.mkdtempSync(fs.existsSync('/dev/shm') ? '/dev/shm/ckpt-small-keys-' : path.join(require('node:os').tmpdir(), 'ckpt-small-keys-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

function values() {
  const out = [];
  for (let i = 0; i < SCALARS; i++) out.push([`s${i}`, i * 0.5]);
  for (let i = 0; i < ARRAYS; i++) {
    const a = new Float64Array(256);
    for (let j = 0; j < 256; j++) a[j] = Math.sin(i * 256 + j);
    out.push([`a${i}`, ndarray(a, [16, 16])]);
  }
  return out;
}

/** One Python round: the same data, each operation timed inside Python (start-up and imports outside). */
const PY = `
import sys, time, json, os
import numpy as np
what, d, scalars, arrays = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
vals = {}
for i in range(scalars): vals['s%d' % i] = np.array(i * 0.5)
for i in range(arrays): vals['a%d' % i] = np.sin(np.arange(i * 256, i * 256 + 256, dtype='f8')).reshape(16, 16)
out = {}
def timed(name, fn):
    t = time.perf_counter(); fn(); out[name] = time.perf_counter() - t
if what == 'npz':
    f = os.path.join(d, 'numpy.npz')
    timed('savez', lambda: np.savez(f, **vals))
    def load():
        with np.load(f, allow_pickle=False) as z:
            for k in z.files: z[k]
    timed('load', load)
    timed('savez_compressed', lambda: np.savez_compressed(f, **vals))
    timed('load_compressed', load)
    os.remove(f)
elif what == 'json':
    f = os.path.join(d, 'py.json')
    plain = {k: (v.tolist()) for k, v in vals.items()}
    timed('dump', lambda: json.dump(plain, open(f, 'w')))
    def load():
        with open(f) as h:
            x = json.load(h)
        for k in x: x[k]
    timed('load', load)
    os.remove(f)
elif what == 'h5':
    import h5py
    f = os.path.join(d, 'py.h5')
    def write():
        with h5py.File(f, 'w') as h:
            for k, v in vals.items(): h.create_dataset(k, data=v)
    timed('h5py_write', write)
    def read():
        with h5py.File(f, 'r') as h:
            for k in h.keys(): h[k][()]
    timed('h5py_read', read)
    os.remove(f)
elif what == 'append':
    import zipfile
    f = sys.argv[5]
    def add():
        with zipfile.ZipFile(f, 'a') as z:
            with z.open('pyextra%d.npy' % int(sys.argv[6]), 'w', force_zip64=True) as m:
                np.lib.format.write_array(m, np.array(1.5), allow_pickle=False)
    timed('append', add)
print(json.dumps(out))
`;
const py = (...args) => JSON.parse(execFileSync(PYTHON, ['-c', PY, ...args.map(String)], { encoding: 'utf8', maxBuffer: 1 << 26 }));

const now = () => process.hrtime.bigint();
const since = (t) => Number(process.hrtime.bigint() - t) / 1e9;

/** Best seconds of each contender over interleaved rounds: `ours` are timed here, `python()` returns its own. */
async function rounds(ours, python) {
  const bestOf = {};
  const keep = (k, s) => { bestOf[k] = Math.min(bestOf[k] ?? Infinity, s); };
  for (let r = 0; r <= ROUNDS; r++) {
    for (const [name, fn] of Object.entries(ours)) {
      const t = now();
      await fn();
      if (r > 0) keep(name, since(t)); // round 0 warms up
    }
    if (python && r > 0) for (const [k, s] of Object.entries(python())) keep(k, s);
  }
  return bestOf;
}

const ms = (s) => `${fmt(s * 1e3, 1)} ms`;
const vs = (a, b) => `${fmt(a / b, 2)}x`;

/**
 * The add-one-key rounds again on a filesystem with reflinks, when CHECKPOINTER_BENCH_REFLINK_DIR
 * names a folder on one (btrfs, XFS made with reflink=1; e.g. a loop-mounted image): there the
 * commit's copy of the file costs nothing, which leaves the per-key work and the central directory.
 */
function reflinkAdd(big) {
  const at = process.env.CHECKPOINTER_BENCH_REFLINK_DIR;
  if (!at) return null;
  const d = fs.mkdtempSync(path.join(at, 'ckpt-small-keys-'));
  const file = path.join(d, 'big.npz');
  fs.copyFileSync(big, file); // holds the extra<n> keys the tmpfs rounds added: these add other names
  const fsType = execFileSync('df', ['--output=fstype', d], { encoding: 'utf8' }).split('\n')[1]?.trim() || 'unknown fs';
  return {
    where: `${fsType} (${at})`,
    fsType,
    cleanup: () => fs.rmSync(d, { recursive: true, force: true }),
    ours: addOneKey(file, d, 'reflinked', fs.constants.COPYFILE_FICLONE),
  };
}

/**
 * The add-one-key rounds on `file` (keys `<prefix><n>`), with a 1-key file and a copy of `file`
 * (`copyFileSync` with `copyFlags`) made in `folder` for scale.
 */
function addOneKey(file, folder, prefix, copyFlags = 0) {
  const fast = { durable: false };
  const one = path.join(folder, 'one.npz');
  const copy = path.join(folder, 'copy.npz');
  let r = 0;
  return {
    addAsync: () => new NumPyCheckpointer(file, fast).with((c) => c.set(`${prefix}${r++}`, 1.5)),
    addSync: () => new NumPyCheckpointer(file, fast).withSync((c) => c.setSync(`${prefix}${r++}`, 1.5)),
    addDurable: () => new NumPyCheckpointer(file).with((c) => c.set(`${prefix}${r++}`, 1.5)),
    oneKeyFile: async () => { fs.rmSync(one, { force: true }); await new NumPyCheckpointer(one, fast).with((c) => c.set('x', 1.5)); },
    copy: async () => { fs.copyFileSync(file, copy, copyFlags); },
  };
}

async function main() {
  const vals = values();
  const fast = { durable: false };
  const writeAll = async (Cls, file, opts) => {
    fs.rmSync(file, { force: true });
    await new Cls(file, opts).with(async (c) => { for (const [k, v] of vals) await c.set(k, v); });
  };
  const writeAllSync = (Cls, file, opts) => {
    fs.rmSync(file, { force: true });
    new Cls(file, opts).withSync((c) => { for (const [k, v] of vals) c.setSync(k, v); });
  };
  const readAll = async (Cls, file) => new Cls(file).with(async (c) => { for (const k of await c.keys()) await c.get(k); });
  const readAllSync = (Cls, file) => new Cls(file).withSync((c) => { for (const k of c.keysSync()) c.getSync(k); });

  console.log(`## Many small keys: ${SCALARS.toLocaleString('en')} scalars + ${ARRAYS.toLocaleString('en')} float64 [16, 16] arrays (${KEYS.toLocaleString('en')} keys), tmpfs\n`);
  console.log(`Ours: one scope (open, every \`set\` / \`get\` one key at a time, close), durable: false. Python (Debian's /usr/bin/python3): the same data, each operation timed inside one process per round (interpreter start-up and imports outside). Best of ${ROUNDS} interleaved rounds after a warm-up. Ratios: ours / the peer's time (below 1.00x = faster).\n`);

  // ------------------------------------------------------------------ npz
  const npz = path.join(dir, 'ours.npz');
  const npzD = path.join(dir, 'ours-deflate.npz');
  const deflate = { durable: false, compression: 'deflate' };
  const n = await rounds({
    write: () => writeAll(NumPyCheckpointer, npz, fast),
    writeSync: () => writeAllSync(NumPyCheckpointer, npz, fast),
    read: () => readAll(NumPyCheckpointer, npz),
    readSync: () => readAllSync(NumPyCheckpointer, npz),
    writeDeflate: () => writeAll(NumPyCheckpointer, npzD, deflate),
    writeDeflateSync: () => writeAllSync(NumPyCheckpointer, npzD, deflate),
    readDeflate: () => readAll(NumPyCheckpointer, npzD),
    readDeflateSync: () => readAllSync(NumPyCheckpointer, npzD),
  }, () => py('npz', dir, SCALARS, ARRAYS));
  const sizes = { stored: fs.statSync(npz).size, deflated: fs.statSync(npzD).size };

  // ------------------------------------------------------------------ JSON
  const json = path.join(dir, 'ours.json');
  const j = await rounds({
    write: () => writeAll(JSONCheckpointer, json, fast),
    writeSync: () => writeAllSync(JSONCheckpointer, json, fast),
    read: () => readAll(JSONCheckpointer, json),
    readSync: () => readAllSync(JSONCheckpointer, json),
  }, () => py('json', dir, SCALARS, ARRAYS));

  // ------------------------------------------------------------------ HDF5
  let h = null;
  if (hdf5Info().available) {
    const h5 = path.join(dir, 'ours.h5');
    h = await rounds({
      write: () => writeAll(HDF5Checkpointer, h5, fast),
      writeSync: () => writeAllSync(HDF5Checkpointer, h5, fast),
      read: () => readAll(HDF5Checkpointer, h5),
      readSync: () => readAllSync(HDF5Checkpointer, h5),
    }, () => py('h5', dir, SCALARS, ARRAYS));
  }

  const table = [
    ['.npz write', n.write, n.writeSync, n.savez, '`numpy.savez`', 1.5],
    ['.npz read every key', n.read, n.readSync, n.load, '`numpy.load` + `z[k]` for every key', 1.0],
    ['.npz write, deflate', n.writeDeflate, n.writeDeflateSync, n.savez_compressed, '`numpy.savez_compressed`', null],
    ['.npz read every key, deflated', n.readDeflate, n.readDeflateSync, n.load_compressed, '`numpy.load` + `z[k]` for every key', null],
    ['JSON write', j.write, j.writeSync, j.dump, '`json.dump` of the `tolist()`s', null],
    ['JSON read every key', j.read, j.readSync, j.load, '`json.load` + `d[k]` for every key', 2.0],
  ];
  if (h) {
    table.push(['HDF5 write', h.write, h.writeSync, h.h5py_write, 'h5py `create_dataset` per key', 1.0]);
    table.push(['HDF5 read every key', h.read, h.readSync, h.h5py_read, 'h5py `h[k][()]` for every key', 1.0]);
  }
  console.log('| operation | ours async | ours sync | peer | peer | async / peer | sync / peer | target | met |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  const c = chart('small-keys', {
    title: `${KEYS.toLocaleString('en')} small keys (${SCALARS.toLocaleString('en')} scalars + ${ARRAYS.toLocaleString('en')} [16, 16] arrays): one scope, key by key, tmpfs`,
    subtitle: `Best of ${ROUNDS} interleaved rounds. Python: numpy ${'1.24'}, json, h5py 3.7, timed inside Python.`,
    unit: 'ms',
    better: 'lower',
  });
  const line = (label, a, s, p, peer, target) => {
    const ok = (x) => (x / p <= target ? '**yes**' : 'no');
    const met = target === null ? '' : `async ${ok(a)}, sync ${ok(s)}`;
    console.log(`| ${label} | ${ms(a)} | ${ms(s)} | ${ms(p)} | ${peer} | ${vs(a, p)} | ${vs(s, p)} | ${target === null ? '' : `<= ${fmt(target, 1)}x`} | ${met} |`);
    c.bar(label, 'ours async', a * 1e3);
    c.bar(label, 'ours sync', s * 1e3);
    c.bar(label, peer.replace(/`/g, ''), p * 1e3, { kind: 'peer' });
  };
  for (const row of table) line(...row);
  console.log('');
  console.log(`File sizes: .npz stored ${fmt(sizes.stored / 2 ** 20, 2)} MiB, deflated ${fmt(sizes.deflated / 2 ** 20, 2)} MiB (level 6).\n`);

  // ------------------------------------------------------------------ one key added to a 100,000-key file
  const big = path.join(dir, 'big.npz');
  const t0 = now();
  await new NumPyCheckpointer(big, fast).with(async (c) => { for (let i = 0; i < BIG_KEYS; i++) await c.set(`k${i}`, i); });
  const writeBig = since(t0);
  const bigSize = fs.statSync(big).size;
  const add = await rounds(addOneKey(big, dir, 'extra'));
  const pyBig = path.join(dir, 'py-big.npz');
  fs.copyFileSync(big, pyBig);
  let pyAppend = Infinity;
  for (let i = 0; i < ROUNDS; i++) pyAppend = Math.min(pyAppend, py('append', dir, 0, 0, pyBig, i).append);
  console.log(`### Adding one small key to a ${BIG_KEYS.toLocaleString('en')}-key .npz (${fmt(bigSize / 2 ** 20, 1)} MiB, tmpfs)\n`);
  console.log(`Each round opens the file, sets one scalar, closes (= the commit). Writing the ${BIG_KEYS.toLocaleString('en')} keys in one scope took ${ms(writeBig)} (async). Best of ${ROUNDS} interleaved rounds.\n`);
  console.log('| ours async, durable: false | ours sync, durable: false | ours async, durable (fsync) | a 1-key file, for scale | `fs.copyFileSync` of the file | Python `zipfile` append mode (in place, not crash-safe) |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| ${ms(add.addAsync)} | ${ms(add.addSync)} | ${ms(add.addDurable)} | ${ms(add.oneKeyFile)} | ${ms(add.copy)} | ${ms(pyAppend)} |`);
  console.log('');
  const reflink = reflinkAdd(big);
  const reflinkAdds = reflink && await rounds(reflink.ours);
  if (reflinkAdds) {
    console.log(`On ${reflink.where}, where the commit's copy of the file is a reflink (no data copied), the same rounds:\n`);
    console.log('| ours async, durable: false | ours sync, durable: false | ours async, durable (fsync) | a 1-key file, for scale | `fs.copyFileSync(…, COPYFILE_FICLONE)` of the file |');
    console.log('|---|---|---|---|---|');
    console.log(`| ${ms(reflinkAdds.addAsync)} | ${ms(reflinkAdds.addSync)} | ${ms(reflinkAdds.addDurable)} | ${ms(reflinkAdds.oneKeyFile)} | ${ms(reflinkAdds.copy)} |`);
    console.log('');
    reflink.cleanup();
  }
  const a = chart('small-keys-add', {
    title: `Adding one key to a ${BIG_KEYS.toLocaleString('en')}-key .npz (${fmt(bigSize / 2 ** 20, 1)} MiB), tmpfs`,
    subtitle: `Best of ${ROUNDS} rounds: open, set one scalar, close. Ours: a kernel copy of the file + the new member, old directory verbatim, rename (crash-safe); zipfile's append mode writes in place.`,
    unit: 'ms',
    better: 'lower',
  });
  a.bar('add one key', 'ours async', add.addAsync * 1e3);
  a.bar('add one key', 'ours sync', add.addSync * 1e3);
  a.bar('add one key', 'ours durable', add.addDurable * 1e3);
  a.bar('add one key', 'zipfile append (not crash-safe)', pyAppend * 1e3, { kind: 'peer' });
  a.bar('add one key', 'fs.copyFileSync of the file', add.copy * 1e3, { kind: 'plain' });
  if (reflinkAdds) {
    const g = `add one key, ${reflink.fsType} (reflink)`;
    a.bar(g, 'ours async', reflinkAdds.addAsync * 1e3);
    a.bar(g, 'ours sync', reflinkAdds.addSync * 1e3);
    a.bar(g, 'ours durable', reflinkAdds.addDurable * 1e3);
    a.bar(g, 'fs.copyFileSync of the file', reflinkAdds.copy * 1e3, { kind: 'plain' });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
