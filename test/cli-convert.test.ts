/**
 * The command-line tool's writers (issue 12): convert between every pair of formats (read back by
 * h5py, numpy and this package), its atomic output and bounded memory, its progress bar under a
 * pseudo-terminal, and repair of an HDF5 file whose writer was SIGKILLed with it open.
 */
import { before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpointer, NDArray, ndarray } from '../lib/index';
import { MCUTILS_FIXTURES, PYTHON, runPython, tempDir } from './helpers/python';
import { BIN, cli, cliUnderPty, leftovers } from './cli-helpers';

const dir = tempDir('checkpointer-cli-convert-');
const at = (name: string): string => path.join(dir, name);

/** Runs the real bin and reports the child's own peak RSS (bytes), taken at its exit. */
function peakRss(args: string[]): { rss: number; status: number | null } {
  const r = spawnSync(process.execPath, ['-e', `process.on('exit', () => require('fs').writeSync(2, 'maxrss ' + process.resourceUsage().maxRSS + '\\n')); process.argv.splice(1, 0, ${JSON.stringify(BIN)}); require(${JSON.stringify(BIN)})`, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const m = /maxrss (\d+)/.exec(r.stderr);
  assert.ok(m, r.stderr);
  if (r.status !== 0) assert.fail(`${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return { rss: Number(m[1]) * 1024, status: r.status };
}

describe('checkpointer convert', () => {
  const h5 = at('src.h5');
  before(() => {
    runPython(`
import h5py, numpy as np, sys, json
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('frames', data=np.arange(60000.).reshape(600, 100), chunks=(50, 100), compression='gzip', compression_opts=7, shuffle=True)
    f['n'] = np.int32(7)
    f['label'] = 'run-1'
    f['params/alpha'] = 0.25
    f['params/grid'] = np.arange(12, dtype=np.int16).reshape(3, 4)
    f['c'] = np.array([1 + 2j, -1j])
print(json.dumps(0))`, h5);
  });

  it('h5 → npz → h5 → json: every value arrives; numpy and h5py read the outputs; diff finds no difference', () => {
    const npz = at('out.npz');
    const back = at('back.h5');
    const json = at('out.json');
    for (const [from, to] of [[h5, npz], [npz, back], [back, json]] as const) {
      const r = cli(['convert', from, to]);
      assert.equal(r.status, 0, `${from} → ${to}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr, '', 'no progress bar when stderr is a pipe');
      assert.deepEqual(leftovers(dir, path.basename(to)), [], 'no temporary file is left');
      assert.equal(cli(['diff', h5, to]).stdout, '', `${to} holds what ${h5} holds`);
    }
    const np = runPython(`
import numpy as np, sys, json
z = np.load(sys.argv[1])
print(json.dumps({k: [str(z[k].dtype), list(z[k].shape), z[k].ravel()[:3].tolist() if z[k].dtype.kind != 'c' else None] for k in z.files}))`, npz);
    assert.deepEqual(np['frames'], ['float64', [600, 100], [0, 1, 2]]);
    assert.deepEqual(np['params::>|<::grid'], ['int16', [3, 4], [0, 1, 2]]);
    assert.deepEqual(np['n'], ['int32', [], [7]], 'a 0-d int32 keeps its dtype');
    assert.deepEqual(np['label'], ['<U5', [], ['run-1']]);
    const h = runPython(`
import h5py, numpy as np, sys, json
f = h5py.File(sys.argv[1], 'r')
print(json.dumps({'frames': [f['frames'].shape, f['frames'].chunks, bool((f['frames'][()] == np.arange(60000.).reshape(600, 100)).all())],
  'alpha': float(f['params/alpha'][()]), 'grid': f['params/grid'][()].tolist()}))`, back);
    assert.deepEqual(h, { frames: [[600, 100], [600, 100], true], alpha: 0.25, grid: [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]] });
    const j = Checkpointer.fromFile(json).withSync((c) => [c.getSync('label'), c.getSync(['params', 'alpha'])]);
    assert.deepEqual(j, ['run-1', 0.25]);
  });

  it('h5 → h5 keeps each dataset\'s chunks, gzip level and shuffle; --compression gzip:N or none sets them', () => {
    const kept = at('kept.h5');
    assert.equal(cli(['convert', h5, kept]).status, 0);
    assert.match(cli(['ls', kept]).stdout, /^\/frames\s+array\s+float64\s+\(600, 100\)\s+469 KiB\s+[\d.]+ (?:B|KiB)\s+\(50, 100\)\s+gzip:7\+shuffle$/m);
    const g2 = at('g2.h5');
    assert.equal(cli(['convert', h5, g2, '--compression', 'gzip:2']).status, 0);
    assert.match(cli(['ls', g2]).stdout, /^\/frames\s.*\(50, 100\)\s+gzip:2$/m);
    const plain = at('plain.h5');
    assert.equal(cli(['convert', h5, plain, '--compression', 'none']).status, 0);
    assert.match(cli(['ls', plain]).stdout, /^\/frames\s.*\(50, 100\)$/m);
    assert.equal(cli(['diff', h5, plain]).stdout, '');
    // Arrays from a format without chunks get chunks no longer than the array.
    const fromNpz = at('from-npz.h5');
    assert.equal(cli(['convert', at('out.npz'), fromNpz, '--compression', 'gzip']).status, 0);
    assert.match(cli(['ls', fromNpz]).stdout, /^\/params\/grid\s+array\s+int16\s+\(3, 4\)\s+24 B\s+[\d.]+ (?:B|KiB)\s+\(3, 4\)\s+gzip:4$/m);
  });

  it('McUtils fixtures convert to every format and compare equal', () => {
    for (const src of ['mcutils.hdf5', 'mcutils.npz']) {
      for (const ext of ['.h5', '.npz']) {
        const out = at(`mc-${src}${ext}`);
        const r = cli(['convert', path.join(MCUTILS_FIXTURES, src), out]);
        assert.equal(r.status, 0, `${src} → ${ext}: ${r.stderr}`);
        assert.equal(cli(['diff', path.join(MCUTILS_FIXTURES, src), out]).stdout, '', `${src} → ${ext}`);
      }
    }
  });

  it('.npy: one array in, one array out; more than one value into a .npy is refused (exit 6), nothing written', () => {
    const npy = at('one.npy');
    runPython(`
import numpy as np, sys, json
np.save(sys.argv[1], np.arange(20, dtype=np.uint16).reshape(4, 5))
print(json.dumps(0))`, npy);
    const h = at('one.h5');
    assert.equal(cli(['convert', npy, h]).status, 0);
    const back = at('back.npy');
    assert.equal(cli(['convert', h, back]).status, 0);
    assert.deepEqual(runPython(`
import numpy as np, sys, json
a = np.load(sys.argv[1]); print(json.dumps([str(a.dtype), a.tolist()]))`, back), ['uint16', [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [15, 16, 17, 18, 19]]]);
    const r = cli(['convert', h5, at('many.npy')]);
    assert.equal(r.status, 6);
    assert.match(r.stderr, /^checkpointer: ERR_UNSUPPORTED_VALUE: .*many\.npy: a \.npy file holds one array; .* holds 6 values\n$/);
    assert.equal(fs.existsSync(at('many.npy')), false);
  });

  it('refuses to replace OUT without --force (exit 5); codecs it cannot write are ERR_UNSUPPORTED_CODEC (exit 6); nothing is written', () => {
    const out = at('exists.npz');
    fs.writeFileSync(out, 'precious');
    const r = cli(['convert', h5, out]);
    assert.equal(r.status, 5);
    assert.equal(r.stderr, `checkpointer: ERR_EXISTS: ${out}: exists; --force replaces it\n`);
    assert.equal(fs.readFileSync(out, 'utf8'), 'precious');
    assert.equal(cli(['convert', h5, out, '--force']).status, 0);
    assert.equal(cli(['diff', h5, out]).status, 0);
    for (const [codec, target, why] of [['zstd', 'z.h5', /no zstd codec in this build \(available: gzip, gzip:0-9, none, keep\)/], ['lz4', 'z.h5', /no lz4 codec/],
      ['szip', 'z.h5', /the package writes no szip datasets yet/], ['gzip', 'z.npz', /only \.h5\/\.hdf5 output is compressed/]] as const) {
      const c = cli(['convert', h5, at(target), '--compression', codec]);
      assert.equal(c.status, 6, codec);
      assert.match(c.stderr, /^checkpointer: ERR_UNSUPPORTED_CODEC: /);
      assert.match(c.stderr, why);
      assert.equal(fs.existsSync(at(target)), false);
    }
    assert.equal(cli(['convert', h5, at('z.h5'), '--compression', 'gzip:12']).status, 2);
    const nodir = cli(['convert', h5, at('no/such/dir/out.npz')]);
    assert.equal(nodir.status, 5);
    assert.equal(nodir.stderr, `checkpointer: ERR_NOT_WRITABLE: ${at('no/such/dir/out.npz')}: its directory does not exist\n`);
    assert.equal(cli(['convert', h5, at('z.txt')]).status, 6);
    assert.equal(cli(['convert', h5, h5, '--force']).status, 2, 'IN and OUT the same file');
  });

  it('a compound (numpy structured) dataset converts to a structured npz member numpy reads equal; diff finds no difference', () => {
    const src = at('compound.h5');
    runPython(`
import h5py, numpy as np, sys, json
with h5py.File(sys.argv[1], 'w') as f:
    f['ok'] = np.arange(3.)
    f['table'] = np.array([(1.5, 2, b'ab'), (-3.0, 4, b'c')], dtype=[('a', '<f8'), ('b', '<i4'), ('s', 'S4')])
print(json.dumps(0))`, src);
    const out = at('table.npz');
    const r = cli(['convert', src, out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(cli(['diff', src, out]).status, 0);
    const read = runPython(`
import numpy as np, sys, json
t = np.load(sys.argv[1])['table']
print(json.dumps({'descr': [list(d) for d in t.dtype.descr], 'rows': [[float(r[0]), int(r[1]), r[2].decode()] for r in t]}))`, out);
    assert.deepEqual(read, { descr: [['a', '<f8'], ['b', '<i4'], ['s', '|S4']], rows: [[1.5, 2, 'ab'], [-3, 4, 'c']] });
  });

  it('a value that cannot be read fails the convert before OUT changes: the old OUT stays, no temporary file is left', () => {
    const bad = at('regionref.h5');
    runPython(`
import h5py, numpy as np, sys, json
with h5py.File(sys.argv[1], 'w') as f:
    f['ok'] = np.arange(3.)
    d = f.create_dataset('data', data=np.arange(10.))
    r = f.create_dataset('regions', (1,), dtype=h5py.regionref_dtype)
    r[0] = d.regionref[2:5]
    f['later'] = np.arange(4.)
print(json.dumps(0))`, bad);
    const out = at('keep.npz');
    Checkpointer.fromFile(out).withSync((c) => c.setSync('old', 1));
    const before = fs.readFileSync(out);
    const r = cli(['convert', bad, out, '--force']);
    assert.equal(r.status, 6, r.stderr);
    assert.match(r.stderr, /^checkpointer: ERR_UNSUPPORTED_DTYPE: .*regionref\.h5: .*region references/);
    assert.deepEqual(fs.readFileSync(out), before);
    assert.deepEqual(leftovers(dir, 'keep.npz'), []);
  });

  it('a full disk: ERR_NO_SPACE naming OUT (exit 5), the old OUT intact, no temporary file left (tiny tmpfs in a mount namespace)', (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root: mount -t tmpfs inside unshare -m');
    const mnt = at('tiny');
    fs.mkdirSync(mnt);
    const out = path.join(mnt, 'out.npz');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs -o size=300k tmpfs "$1" && echo old > "$2" && "$3" "$4" convert "$5" "$2" --force; echo "exit $?"; cat "$2"; ls -a "$1"',
      'sh', mnt, out, process.execPath, BIN, h5], { encoding: 'utf8' });
    if (r.error || (/unshare|mount:/.test(r.stderr) && !/exit/.test(r.stdout))) return t.skip(`no mount namespace here: ${r.error?.message ?? r.stderr.trim()}`);
    assert.equal(r.stderr, `checkpointer: ERR_NO_SPACE: ${out}: cannot write ${out}: no space left on the device (ENOSPC)\n`);
    assert.deepEqual(r.stdout.split('\n'), ['exit 5', 'old', '.', '..', 'out.npz', '']);
  });

  it('large arrays stream: converting a 384 MiB array h5 → npz → h5 keeps the peak RSS far below the array', () => {
    const big = at('big.h5');
    const rows = 49152;
    const cols = 1024; // 49152 × 1024 × 8 B = 384 MiB
    Checkpointer.fromFile(big).withSync((c) => {
      const ds = c.datasetSync('x', { dtype: 'float64', shape: [0, cols] });
      const batch = new Float64Array(1024 * cols);
      for (let r = 0; r < rows; r += 1024) {
        for (let i = 0; i < batch.length; i++) batch[i] = r * cols + i;
        ds.appendSync(batch);
      }
    });
    const rss = (args: string[]): number => {
      const r = peakRss(args);
      assert.equal(r.status, 0);
      return r.rss;
    };
    const toNpz = rss(['convert', big, at('big.npz')]);
    const toH5 = rss(['convert', at('big.npz'), at('big2.h5')]);
    const MiB = 1024 * 1024;
    assert.ok(toNpz < 160 * MiB, `h5 → npz peak RSS ${(toNpz / MiB).toFixed(0)} MiB`);
    assert.ok(toH5 < 160 * MiB, `npz → h5 peak RSS ${(toH5 / MiB).toFixed(0)} MiB`);
    const diff = cli(['diff', big, at('big2.h5')]);
    assert.equal(diff.status, 0, diff.stdout);
    const last = Checkpointer.fromFile(at('big.npz')).withSync((c) => c.datasetSync('x').readSync([-1, [-2, null]]));
    assert.deepEqual([...(last as NDArray).data], [rows * cols - 2, rows * cols - 1]);
    for (const f of ['big.h5', 'big.npz', 'big2.h5']) fs.rmSync(at(f));
  });

  it('a savez_compressed member is inflated as a stream: convert, verify and diff stay far below its size; damage is found', () => {
    const src = at('deflated.npz');
    runPython(`
import numpy as np, sys, json
np.savez_compressed(sys.argv[1], a=np.arange(24 * 1024 * 1024, dtype=np.float64).reshape(-1, 2048), s=np.float32(1.5))
print(json.dumps(0))`, src); // 192 MiB of float64, about 28 MB deflated
    const MiB = 1024 * 1024;
    const out = at('inflated.h5');
    for (const args of [['ls', src], ['convert', src, out], ['verify', src], ['diff', src, out], ['show', src, 'a']]) {
      const { rss, status } = peakRss(args);
      assert.equal(status, 0, args.join(' '));
      assert.ok(rss < 160 * MiB, `${args[0]}: peak RSS ${(rss / MiB).toFixed(0)} MiB`);
    }
    assert.match(cli(['ls', out]).stdout, /^\/a\s+array\s+float64\s+\(12288, 2048\)\s+192 MiB/m);
    assert.match(cli(['ls', out]).stdout, /^\/s\s+scalar\s+float32\s+\(\).*= 1\.5$/m);
    // One byte of the deflate stream changed, well inside the member.
    const fd = fs.openSync(src, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, 14_000_000);
    b[0] ^= 0x55;
    fs.writeSync(fd, b, 0, 1, 14_000_000);
    fs.closeSync(fd);
    const v = cli(['verify', src]);
    assert.equal(v.status, 1);
    assert.match(v.stderr, /^checkpointer: ERR_CHECKPOINT_CORRUPT: .*deflated\.npz: key "a": member a\.npy: (does not inflate|CRC-32 mismatch|inflates to)/);
    const c = cli(['convert', src, at('from-damaged.h5')]);
    assert.equal(c.status, 3, c.stderr);
    assert.equal(fs.existsSync(at('from-damaged.h5')), false);
    fs.rmSync(out);
  });

  it('Ctrl-C (SIGINT) mid-convert: exit 130, OUT not created, no temporary or spool file left', async () => {
    const src = at('sigint.h5');
    Checkpointer.fromFile(src).withSync((c) => {
      const ds = c.datasetSync('x', { dtype: 'float64', shape: [0, 1024] });
      const batch = new Float64Array(1024 * 1024).fill(3);
      for (let i = 0; i < 24; i++) ds.appendSync(batch); // 192 MiB
    });
    const out = at('sigint.npz');
    const child = spawn(process.execPath, [BIN, 'convert', src, out, '--progress'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // The first piece is through: interrupt now.
        if (/%/.test(stderr) && child.signalCode === null && !child.killed) child.kill('SIGINT');
      });
      child.on('close', (c) => resolve(c));
    });
    assert.equal(code, 130, stderr);
    assert.match(stderr, /checkpointer: ERR_INTERRUPTED: .*sigint\.npz: interrupted; the partial output was removed\n$/);
    assert.equal(fs.existsSync(out), false);
    assert.deepEqual(leftovers(dir, 'sigint.npz'), []);
    fs.rmSync(src);
  });

  it('a progress bar (bytes, rate, ETA) on stderr under a terminal; none with --no-progress or when piped', () => {
    const src = at('progress.npz');
    Checkpointer.fromFile(src).withSync((c) => c.setSync('x', ndarray(new Float64Array(4 << 20).fill(1), [4096, 1024])));
    const tty = cliUnderPty(['convert', src, at('progress.h5')]);
    assert.equal(tty.status, 0, tty.terminal);
    assert.match(tty.terminal, /\rprogress\.h5 \[#{24}\] 100% 32 MiB\/32 MiB [\d.]+ [KMG]iB\/s ETA 00:00\x1b\[K/);
    assert.equal(tty.stdout, '');
    const quiet = cliUnderPty(['convert', src, at('progress2.h5'), '--no-progress']);
    assert.equal(quiet.status, 0);
    assert.equal(quiet.terminal, '');
    const piped = cli(['convert', src, at('progress3.h5')]);
    assert.equal(piped.stderr, '');
    const forced = cli(['convert', src, at('progress4.h5'), '--progress']);
    assert.match(forced.stderr, /100% 32 MiB\/32 MiB/);
  });
});

describe('checkpointer repair', () => {
  /** An HDF5 file whose writer (h5py) was SIGKILLed with the file open: its status flags stay set. */
  const killedWriter = (name: string): string => {
    const file = at(name);
    const r = spawnSync(PYTHON, ['-c', `
import h5py, os, signal, sys, numpy as np
f = h5py.File(sys.argv[1], 'w', libver='latest')
f['x'] = np.arange(10.)
f['g/y'] = 'kept'
f.flush()
os.kill(os.getpid(), signal.SIGKILL)`, file]);
    assert.equal(r.signal, 'SIGKILL');
    return file;
  };

  it('other commands say the file\'s writer died and point at repair (exit 3)', () => {
    const file = killedWriter('died0.h5');
    const r = cli(['ls', file]);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /^checkpointer: ERR_CHECKPOINT_CORRUPT: .*died0\.h5: .*died without closing it.*run checkpointer repair .*died0\.h5 to clear them/);
    assert.equal(r.stderr.split('\n').length, 2, 'one line');
    assert.equal(cli(['verify', file]).status, 1);
  });

  it('says what it will do; without a terminal and without --yes it refuses (exit 7); --dry-run changes nothing', () => {
    const file = killedWriter('died1.h5');
    const before = fs.readFileSync(file);
    const r = cli(['repair', file]);
    assert.equal(r.status, 7);
    assert.match(r.stdout, /its writer died with the file open.*\nrepair will clear the flags \(what h5clear -s does\) in a copy of the file, then rename the copy over it/);
    assert.match(r.stderr, /^checkpointer: ERR_NOT_CONFIRMED: .*died1\.h5: not confirmed: no terminal to ask on; run again with --yes to repair\n$/);
    const dry = cli(['repair', file, '--dry-run']);
    assert.equal(dry.status, 0);
    assert.match(dry.stdout, /dry run: nothing changed/);
    assert.deepEqual(fs.readFileSync(file), before);
  });

  it('--yes clears the flags: the file opens here and in h5py with its data; repairing again is a no-op', () => {
    const file = killedWriter('died2.h5');
    const r = cli(['repair', file, '--yes']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /died2\.h5: repaired; it opens \(2 keys\)/);
    assert.equal(cli(['show', file, 'x']).stdout, 'array([0., 1., 2., 3., 4., 5., 6., 7., 8., 9.])\n');
    assert.equal(cli(['verify', file]).status, 0);
    assert.deepEqual(runPython(`
import h5py, sys, json
f = h5py.File(sys.argv[1], 'r'); print(json.dumps([f['x'][()].tolist(), f['g/y'][()].decode()]))`, file), [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'kept']);
    assert.deepEqual(leftovers(dir, 'died2.h5'), []);
    const again = cli(['repair', file]);
    assert.equal(again.status, 0);
    assert.match(again.stdout, /nothing to repair/);
  });

  it('on a terminal it asks: "n" changes nothing (exit 7), "y" repairs', () => {
    const file = killedWriter('died3.h5');
    const before = fs.readFileSync(file);
    const no = cliUnderPty(['repair', file], { prompt: '[y/N]', answer: 'n' });
    assert.equal(no.status, 7, no.terminal);
    assert.match(no.terminal, /Repair .*died3\.h5\? \[y\/N\] /);
    assert.deepEqual(fs.readFileSync(file), before);
    const yes = cliUnderPty(['repair', file], { prompt: '[y/N]', answer: 'y' });
    assert.equal(yes.status, 0, yes.terminal);
    assert.match(yes.stdout, /repaired/);
    assert.equal(cli(['ls', file]).status, 0);
  });

  it('other damage, and formats that need no repair, are refused with their own exit codes', () => {
    const cut = at('cut.h5');
    Checkpointer.fromFile(cut).withSync((c) => c.setSync('x', ndarray(new Float64Array(100000), [100000])));
    fs.truncateSync(cut, 4096);
    const r = cli(['repair', cut, '--yes']);
    assert.equal(r.status, 3);
    assert.match(r.stderr, /repair only clears the status flags a writer that died left set; this is other damage/);
    const npz = at('fine.npz');
    Checkpointer.fromFile(npz).withSync((c) => c.setSync('a', 1));
    assert.equal(cli(['repair', npz]).status, 6);
    assert.equal(cli(['repair', at('absent.h5')]).status, 4);
  });
});
