/**
 * The command-line tool (issue 12): ls, show, diff, verify and the error/exit-code contract, run as
 * the real bin in child processes on files h5py, numpy, McUtils and this package wrote.
 * (convert, the progress bar and repair: cli-convert.test.ts.)
 */
import { before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointManager, Checkpointer, EnumArray, ndarray, recordArray } from '../lib/index';
import { describeValue } from '../lib/cli/tree';
import { formatValue } from '../lib/cli/format';
import { MCUTILS_FIXTURES, runPython, tempDir } from './helpers/python';
import { cli } from './cli-helpers';

const dir = tempDir('checkpointer-cli-');
const at = (name: string): string => path.join(dir, name);

/** Arrays numpy prints in different ways, with numpy's own repr of each (and of some slices). */
const NUMPY_CASES = `
import numpy as np, json, sys
cases = {
  'f1': np.array([1.5, 2.25, -3.0]), 'f2': np.arange(12.).reshape(3, 4) / 7, 'f3': np.array([1e-5, 1.0, 123456.0]),
  'f4': np.array([np.nan, 1.0, -np.inf]), 'f5': np.linspace(0, 1, 2000), 'f6': np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 3,
  'i1': np.arange(10), 'i2': np.arange(2000, dtype=np.int32).reshape(40, 50), 'i3': np.array([-5, 100, 7], dtype=np.int16),
  'b1': np.array([True, False, True]), 'b2': np.array([True, True]), 'c1': np.array([1 + 2j, 3 - 4.5j]),
  'e1': np.zeros((0, 3)), 'e2': np.zeros(0, dtype=np.int32), 'u1': np.arange(5, dtype=np.uint8),
  'big': np.arange(100000.).reshape(100, 1000), 'wide': np.arange(30.) * 1.1, 's0': np.float64(3.25),
}
np.savez(sys.argv[1], **cases)
np.savez_compressed(sys.argv[2], **cases)
slices = {'big': ['0:3,::100', '-1', '5:8,990:', '...,0', '::10,::100', '50'], 'i2': ['::7', '1:3,-5:'], 'f6': ['1', ':,1:,::2']}
def sl(a, text):
    idx = []
    for p in text.split(','):
        if p == '...': idx.append(Ellipsis)
        elif ':' in p: idx.append(slice(*[int(x) if x else None for x in p.split(':')]))
        else: idx.append(int(p))
    return a[tuple(idx)]
print(json.dumps({'repr': {k: repr(v) for k, v in cases.items()}, 'slices': {k: {s: repr(sl(cases[k], s)) for s in v} for k, v in slices.items()}}))
`;

describe('checkpointer: the command line', () => {
  it('--help lists every command and the exit codes; each command has its --help; a bare call is a usage error', () => {
    const r = cli(['--help']);
    assert.equal(r.status, 0);
    for (const c of ['ls', 'show', 'convert', 'verify', 'diff', 'repair']) {
      assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'));
      const h = cli([c, '--help']);
      assert.equal(h.status, 0, c);
      assert.match(h.stdout, new RegExp(`^Usage: checkpointer ${c} `), c);
      assert.equal(cli(['help', c]).stdout, h.stdout);
    }
    assert.match(r.stdout, /Exit codes: 0 ok, 1 problems\/differences found, 2 usage error/);
    assert.equal(cli([]).status, 2);
    assert.match(cli(['--version']).stdout, /^\d+\.\d+\.\d+/);
  });

  it('usage errors: one line "checkpointer: ERR_USAGE: …", exit 2, no stack trace', () => {
    for (const args of [['frob'], ['ls'], ['ls', 'a', 'b', 'c'], ['ls', 'x.h5', '--bogus'], ['diff', 'a.h5', 'b.h5', '--rtol', 'lots'], ['show', 'x.json', 'k', '--slice']]) {
      const r = cli(args);
      assert.equal(r.status, 2, args.join(' '));
      assert.match(r.stderr, /^checkpointer: ERR_USAGE: .+\n$/, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it('a missing file is exit 4 (ENOENT), an unknown extension exit 6, a damaged file exit 3 — named in one line', () => {
    const missing = cli(['ls', at('nope.h5')]);
    assert.equal(missing.status, 4);
    assert.equal(missing.stderr, `checkpointer: ENOENT: ${at('nope.h5')}: no such file\n`);
    fs.writeFileSync(at('notes.txt'), 'hello');
    const ext = cli(['ls', at('notes.txt')]);
    assert.equal(ext.status, 6);
    assert.match(ext.stderr, /^checkpointer: ERR_UNKNOWN_EXTENSION: /);
    fs.writeFileSync(at('junk.h5'), Buffer.alloc(4096, 7));
    fs.writeFileSync(at('junk.npz'), Buffer.alloc(4096, 7));
    for (const f of ['junk.h5', 'junk.npz']) {
      const r = cli(['ls', at(f)]);
      assert.equal(r.status, 3, f);
      assert.match(r.stderr, new RegExp(`^checkpointer: ERR_CHECKPOINT_CORRUPT: ${at(f).replace(/[.]/g, '\\.')}: .+\\n$`), f);
    }
  });
});

describe('checkpointer ls', () => {
  let h5 = '';
  let npz = '';
  before(() => {
    h5 = at('h5py.h5');
    npz = at('numpy.npz');
    runPython(`
import h5py, numpy as np, sys, json
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('big', data=np.arange(100000.).reshape(1000, 100), chunks=(100, 100), compression='gzip', compression_opts=6, shuffle=True)
    f['s'] = 'hello'
    g = f.create_group('grp'); g['x'] = np.int32(3); g['v'] = np.arange(5, dtype=np.int16)
    f.create_dataset('flat', data=np.ones(10, dtype=np.float32))
np.savez_compressed(sys.argv[2], zeros=np.zeros(100000), **{'params::>|<::alpha': np.float64(0.5), 'params::>|<::grid': np.eye(3)})
print(json.dumps(0))`, h5, npz);
  });

  it('an h5py file: every key with kind, dtype, shape, size, chunks and filters, groups recursively', () => {
    const r = cli(['ls', h5]);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /h5py\.h5: HDF5Checkpointer, .* 4 top-level keys/);
    assert.match(lines[1]!, /^KEY\s+KIND\s+DTYPE\s+SHAPE\s+SIZE\s+ON DISK\s+CHUNKS\s+FILTERS\s+VALUE$/);
    const row = (key: string): string[] => lines.find((l) => l.startsWith(`${key} `))!.trim().split(/\s{2,}/);
    // ON DISK: what h5py's get_storage_size says each dataset holds in the file.
    const stored = runPython<Record<string, number>>(`
import h5py, json, sys
with h5py.File(sys.argv[1]) as f: print(json.dumps({k: f[k].id.get_storage_size() for k in ['big', 's', 'grp/x', 'grp/v']}))`, h5);
    assert.ok(stored.big! > 1000 && stored.big! < 800000 / 10, `gzip+shuffle of a ramp: ${stored.big}`);
    assert.deepEqual(row('/big'), ['/big', 'array', 'float64', '(1000, 100)', '781 KiB', `${(stored.big! / 1024).toFixed(1)} KiB`, '(100, 100)', 'gzip:6+shuffle']);
    assert.deepEqual(row('/grp/'), ['/grp/', 'group', '2 keys']);
    assert.deepEqual(row('/grp/x'), ['/grp/x', 'scalar', 'int32', '()', '4 B', `${stored['grp/x']} B`, '= 3']);
    assert.deepEqual(row('/grp/v'), ['/grp/v', 'array', 'int16', '(5,)', '10 B', `${stored['grp/v']} B`]);
    assert.deepEqual(row('/s'), ['/s', 'string', '5 B', `${stored.s} B`, '= "hello"']);
  });

  it('--json: the same tree for scripts, nested under "children"', () => {
    const r = cli(['ls', h5, '--json']);
    assert.equal(r.status, 0);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.format, 'HDF5Checkpointer');
    assert.equal(doc.size, fs.statSync(h5).size);
    const big = doc.keys.find((k: { name: string }) => k.name === 'big');
    assert.deepEqual({ kind: big.kind, dtype: big.dtype, shape: big.shape, nbytes: big.nbytes, chunks: big.chunks, compression: big.compression },
      { kind: 'array', dtype: 'float64', shape: [1000, 100], nbytes: 800000, chunks: [100, 100], compression: 'gzip:6+shuffle' });
    const grp = doc.keys.find((k: { name: string }) => k.name === 'grp');
    assert.deepEqual(grp.children.map((c: { path: string[] }) => c.path), [['grp', 'v'], ['grp', 'x']]);
  });

  it('ls FILE KEY lists one subtree; a missing key is exit 4 (ERR_KEY)', () => {
    const r = cli(['ls', h5, 'grp']);
    assert.equal(r.status, 0);
    assert.deepEqual(r.stdout.split('\n').slice(2).filter(Boolean).map((l) => l.split(/\s+/)[0]), ['/grp/', '/grp/v', '/grp/x']);
    assert.match(cli(['ls', h5, '/grp/x', '--json']).stdout, /"int32"/);
    const missing = cli(['ls', h5, 'grp/nope']);
    assert.equal(missing.status, 4);
    assert.match(missing.stderr, /^checkpointer: ERR_KEY: .*h5py\.h5: key "grp\/nope" is not in the checkpoint\n$/);
  });

  it('a numpy savez_compressed file: McUtils-nested member names as groups, bytes on disk and deflate per member', () => {
    const r = cli(['ls', npz, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    const zeros = doc.keys.find((k: { name: string }) => k.name === 'zeros');
    assert.equal(zeros.nbytes, 800000);
    assert.equal(zeros.compression, 'deflate');
    assert.ok(zeros.stored > 0 && zeros.stored < 10000, `zeros deflate to little (${zeros.stored} B)`);
    const params = doc.keys.find((k: { name: string }) => k.name === 'params');
    assert.equal(params.kind, 'group');
    assert.deepEqual(params.children.map((c: { name: string; kind: string }) => [c.name, c.kind]), [['alpha', 'scalar'], ['grid', 'array']]);
    assert.equal(params.children[0].value, '0.5');
    const text = cli(['ls', npz]).stdout;
    assert.match(text, /^\/params\/grid\s+array\s+float64\s+\(3, 3\)\s+72 B\s+\d+ B\s+deflate$/m);
  });

  it('a .npy file, a JSON checkpoint and the McUtils fixtures list too (lists, None, objects, strings)', () => {
    runPython(`
import numpy as np, sys, json
np.save(sys.argv[1], np.arange(6, dtype=np.int8).reshape(2, 3))
print(json.dumps(0))`, at('one.npy'));
    const npy = cli(['ls', at('one.npy')]);
    assert.equal(npy.status, 0);
    assert.match(npy.stdout, /^\/arr_0\s+array\s+int8\s+\(2, 3\)\s+6 B\s+6 B$/m);
    const json = at('run.json');
    Checkpointer.fromFile(json).withSync((c) => {
      c.setSync('step', 12);
      c.setSync('history', [1, 2, 3]);
      c.setSync(['opts', 'name'], 'adam');
      c.setSync('none', null);
    });
    const j = cli(['ls', json]);
    assert.equal(j.status, 0, j.stderr);
    assert.match(j.stdout, /^\/history\s+list\s+3 items/m);
    assert.match(j.stdout, /^\/opts\/name\s+string\s+4 B.*= "adam"$/m);
    assert.match(j.stdout, /^\/none\s+null/m);
    assert.match(j.stdout, /^\/step\s+scalar\s+int64\s+\(\)\s.*= 12$/m);
    const m = cli(['ls', path.join(MCUTILS_FIXTURES, 'mcutils.hdf5')]);
    assert.equal(m.status, 0, m.stderr);
    assert.match(m.stdout, /^\/holder\s+object\s+\S+/m);
    assert.match(m.stdout, /^\/nothing\s+null/m);
    assert.match(m.stdout, /^\/params\/nested\/grid\s+array\s+float64\s+\(2, 3\)/m);
    assert.match(m.stdout, /^\/amps\s+array\s+complex128\s+\(2,\)/m);
  });
});

describe('checkpointer show', () => {
  let expected: { repr: Record<string, string>; slices: Record<string, Record<string, string>> };
  // numpy.savez (members read by slice through a handle) and savez_compressed (inflated as a stream).
  const npz = at('cases.npz');
  const npzDeflated = at('cases-deflated.npz');
  before(() => {
    expected = runPython(NUMPY_CASES, npz, npzDeflated);
  });

  it('prints each array exactly as numpy\'s repr does (floats, ints, bools, complex, empty, summarised with ...)', () => {
    for (const file of [npz, npzDeflated]) {
      for (const [key, repr] of Object.entries(expected.repr)) {
        const r = cli(['show', file, key]);
        assert.equal(r.status, 0, `${key}: ${r.stderr}`);
        assert.equal(r.stdout, `${repr}\n`, `${path.basename(file)} ${key}`);
      }
    }
  });

  it('--slice reads numpy\'s slice of the array, printed as numpy prints it', () => {
    for (const file of [npz, npzDeflated]) {
      for (const [key, slices] of Object.entries(expected.slices)) {
        for (const [sel, repr] of Object.entries(slices)) {
          const r = cli(['show', file, key, '--slice', sel]);
          assert.equal(r.status, 0, `${key}[${sel}]: ${r.stderr}`);
          assert.equal(r.stdout, `${repr}\n`, `${path.basename(file)} ${key}[${sel}]`);
        }
      }
    }
    const bad = cli(['show', npz, 'big', '--slice', '0:2,::-1']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^checkpointer: ERR_USAGE: --slice 0:2,::-1: the step must be a positive integer/);
    assert.equal(cli(['show', npz, 'big', '--slice', '1000']).status, 2);
    assert.equal(cli(['show', npz, 'big', '--slice', '0,0,0']).status, 2);
  });

  it('the same array from HDF5 (h5py, chunked and compressed) prints the same; a group prints as a dict', () => {
    const h5 = at('show.h5');
    runPython(`
import h5py, numpy as np, sys, json
with h5py.File(sys.argv[1], 'w') as f:
    f.create_dataset('big', data=np.arange(100000.).reshape(100, 1000), chunks=(10, 100), compression='gzip')
    f['g/a'] = np.arange(3)
    f['g/t'] = 'text'
print(json.dumps(0))`, h5);
    assert.equal(cli(['show', h5, 'big']).stdout, `${expected.repr.big}\n`);
    assert.equal(cli(['show', h5, 'big', '--slice', '0:3,::100']).stdout, `${expected.slices.big!['0:3,::100']}\n`);
    assert.equal(cli(['show', h5, 'g']).stdout, "{'a': array([0, 1, 2]), 't': 'text'}\n");
    assert.equal(cli(['show', h5, 'g/t']).stdout, 'text\n', 'a top-level string prints as text');
  });

  it('McUtils values print as Python would: dicts, lists, None, bools, objects', () => {
    const file = path.join(MCUTILS_FIXTURES, 'mcutils.hdf5');
    assert.equal(cli(['show', file, 'nothing']).stdout, 'None\n');
    assert.equal(cli(['show', file, 'converged']).stdout, 'True\n');
    assert.equal(cli(['show', file, 'params/nested']).stdout, "{'grid': array([[0., 1., 2.],\n                [3., 4., 5.]])}\n", 'continuation lines line up under the array');
    const whole = cli(['show', file]);
    assert.equal(whole.status, 0, whole.stderr);
    assert.match(whole.stdout, /^\{'amps': array\(\[1\.\+2\.j , 0\.-0\.5j\]\),$/m);
  });
});

describe('checkpointer diff', () => {
  const a = at('a.h5');
  const b = at('b.npz');
  before(() => {
    const values = new Float64Array(30000).map((_, i) => Math.sin(i));
    Checkpointer.fromFile(a).withSync((c) => {
      c.setSync('x', ndarray(values, [100, 300]));
      c.setSync('n', 3);
      c.setSync(['cfg', 'lr'], 0.01);
    });
    const changed = values.slice();
    changed[301] += 1e-6;
    changed[29999] += 2e-9;
    Checkpointer.fromFile(b).withSync((c) => {
      c.setSync('x', ndarray(changed, [100, 300]));
      c.setSync('n', 3);
      c.setSync(['cfg', 'lr'], 0.01);
    });
  });

  it('equal checkpoints (across formats): exit 0, no output', () => {
    const c = at('a-copy.npz');
    Checkpointer.fromFile(c).withSync((k) => Checkpointer.fromFile(a).withSync((s) => {
      for (const key of s.keysSync()) k.setSync(key, s.getSync(key));
    }));
    const r = cli(['diff', a, c]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
  });

  it('array differences: how many elements, the largest absolute and relative difference and where; exit 1', () => {
    const r = cli(['diff', a, b]);
    assert.equal(r.status, 1);
    const d = (1e-6 + Math.sin(301)) - Math.sin(301);
    const m = /^\/x: 2 of 30000 elements differ; max abs diff (\S+) at \[1, 1\], max rel diff (\S+)\n$/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(Math.abs(Number(m[1]) - d) < 1e-5 * d, `max abs diff ${m[1]}`);
    const rel = d / Math.abs(Math.sin(301) + 1e-6);
    assert.ok(Math.abs(Number(m[2]) - rel) < 1e-5 * rel, `max rel diff ${m[2]}`);
    const json = JSON.parse(cli(['diff', a, b, '--json']).stdout);
    assert.equal(json.equal, false);
    assert.deepEqual(json.differences[0].maxAbsAt, [1, 1]);
  });

  it('--atol and --rtol: within the tolerance is equal (numpy.isclose), outside it is not', () => {
    assert.equal(cli(['diff', a, b, '--atol', '1e-5']).status, 0);
    assert.equal(cli(['diff', a, b, '--rtol', '1e-4']).status, 0);
    const r = cli(['diff', a, b, '--atol', '1e-8']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /^\/x: 1 of 30000 elements differ/);
  });

  it('keys only in one, dtype and shape changes, changed scalars', () => {
    const c = at('c.h5');
    Checkpointer.fromFile(c).withSync((k) => {
      k.setSync('x', ndarray(new Float32Array(30000), [100, 300]));
      k.setSync('n', 4);
      k.setSync('extra', 'yes');
    });
    const d = at('d.h5');
    Checkpointer.fromFile(d).withSync((k) => {
      k.setSync('x', ndarray(new Float64Array(300), [300]));
      k.setSync('n', 3);
      k.setSync(['cfg', 'lr'], 0.01);
    });
    // Against zeros: the largest difference is the largest |sin(i)|, at its first index.
    let max = 0;
    let where = 0;
    for (let i = 0; i < 30000; i++) {
      if (Math.abs(Math.sin(i)) > max) {
        max = Math.abs(Math.sin(i));
        where = i;
      }
    }
    const r = cli(['diff', a, c]);
    assert.equal(r.status, 1);
    assert.deepEqual(r.stdout.trim().split('\n').sort(), [
      `/cfg/lr: only in ${a}`, `/extra: only in ${c}`, '/n: value 3 -> 4', '/x: dtype float64 -> float32',
      `/x: 29999 of 30000 elements differ; max abs diff ${Number(max.toPrecision(6))} at [${Math.floor(where / 300)}, ${where % 300}], max rel diff inf`,
    ].sort());
    assert.match(cli(['diff', a, d]).stdout, /^\/x: shape \(100, 300\) -> \(300,\)$/m);
  });
});

describe('checkpointer verify', () => {
  it('intact files of every format: exit 0, "OK"', () => {
    const files = ['ok.h5', 'ok.npz', 'ok.json'].map(at);
    for (const f of files) {
      Checkpointer.fromFile(f).withSync((c) => {
        c.setSync('x', ndarray(new Float64Array(1000).fill(2), [10, 100]));
        c.setSync(['meta', 'name'], 'run');
      });
      const r = cli(['verify', f]);
      assert.equal(r.status, 0, r.stderr);
      // JSON holds the array as a list of numbers: only arrays and text count as bytes read.
      assert.equal(r.stdout, `${f}: OK (2 values, ${f.endsWith('.json') ? '3 B' : '7.8 KiB'} read)\n`);
      assert.equal(cli(['verify', f, '--quiet']).stdout, '');
    }
    for (const f of ['mcutils.hdf5', 'mcutils.npz', 'mcutils.json']) assert.equal(cli(['verify', path.join(MCUTILS_FIXTURES, f)]).status, 0, f);
  });

  it('an npz member whose bytes changed: exit 1 naming the key and the CRC-32 mismatch', () => {
    const f = at('flip.npz');
    Checkpointer.fromFile(f).withSync((c) => {
      c.setSync('a', ndarray(new Float64Array(100).fill(1), [100]));
      c.setSync('b', ndarray(new Float64Array(100).fill(3), [100]));
    });
    const bytes = fs.readFileSync(f);
    const at3 = bytes.indexOf(Buffer.from(new Float64Array([3, 3]).buffer));
    bytes[at3 + 40] ^= 0xff;
    fs.writeFileSync(f, bytes);
    const r = cli(['verify', f]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^checkpointer: ERR_CHECKPOINT_CORRUPT: .*flip\.npz: key "b": .*CRC-32 mismatch/);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, 'only b is damaged');
  });

  it('a large stored npz member (read in pieces) is CRC-checked over its raw bytes', () => {
    const f = at('large.npz');
    const n = 10_000_000; // 80 MB: past the whole-read limit
    Checkpointer.fromFile(f).withSync((c) => c.setSync('big', ndarray(new Float64Array(n).fill(0.5), [n / 1000, 1000])));
    assert.equal(cli(['verify', f]).status, 0);
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, Buffer.from([0x42]), 0, 1, 50_000_000);
    fs.closeSync(fd);
    const r = cli(['verify', f]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /key "big": member big\.npy: CRC-32 mismatch/);
  });

  it('a truncated HDF5 file: exit 1 with ERR_CHECKPOINT_CORRUPT; a missing one exit 4', () => {
    const f = at('cut.h5');
    Checkpointer.fromFile(f).withSync((c) => c.setSync('x', ndarray(new Float64Array(100000), [100000])));
    fs.truncateSync(f, 4096);
    const r = cli(['verify', f]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^checkpointer: ERR_CHECKPOINT_CORRUPT: .*cut\.h5: /);
    assert.equal(cli(['verify', at('absent.h5')]).status, 4);
  });

  it('a CheckpointManager directory: every step verified and its record checked; a damaged step is named', async () => {
    const run = at('run');
    const mgr = new CheckpointManager(run, { format: 'npz' });
    for (const step of [100, 200, 300]) await mgr.save(step, { x: ndarray(new Float64Array(50).fill(step), [50]) }, { metadata: { loss: 1 / step } });
    await mgr.close();
    const ok = cli(['verify', run]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /3 of 3 step files intact\n$/);
    const damaged = path.join(run, 'step_00000200.npz');
    fs.truncateSync(damaged, fs.statSync(damaged).size - 30);
    const bad = cli(['verify', run]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^checkpointer: ERR_CHECKPOINT_CORRUPT: .*step_00000200\.npz: /);
    assert.match(bad.stdout, /2 of 3 step files intact/);
    // A step file renamed to another step: its record names the step it was saved as.
    fs.rmSync(damaged);
    fs.renameSync(path.join(run, 'step_00000300.npz'), path.join(run, 'step_00000400.npz'));
    const renamed = cli(['verify', run]);
    assert.equal(renamed.status, 1);
    assert.match(renamed.stderr, /step_00000400\.npz: the manager record names step 300, the file name step 400/);
    fs.mkdirSync(at('empty'));
    assert.equal(cli(['verify', at('empty')]).status, 1);
  });
});

describe('checkpointer ls/show: value kinds described by what they are (as the value model grows)', () => {
  it('RecordArray: its fields and dtypes; EnumArray: its members; Buffer: bytes; a class instance: its class', () => {
    const table = recordArray({ a: ndarray(new Float64Array([1, 2.5]), [2]), i: ndarray(new Int32Array([3, 4]), [2]), name: ['x', 'yy'] });
    const r = describeValue(table, 't', ['t']);
    assert.equal(r.kind, 'records');
    assert.deepEqual(r.shape, [2]);
    assert.deepEqual(r.fields, [{ name: 'a', dtype: 'float64', shape: [] }, { name: 'i', dtype: 'int32', shape: [] }, { name: 'name', dtype: 'S2', shape: [] }]);
    assert.equal(formatValue(table), "array([(1., 3, b'x'), (2.5, 4, b'yy')],\n      dtype=[('a', '<f8'), ('i', '<i4'), ('name', 'S2')])");
    const colours = new EnumArray(new Int8Array([0, 1, 1]), [3], 'int8', { RED: 0, GREEN: 1 });
    assert.deepEqual(describeValue(colours, 'c', ['c']), { path: ['c'], name: 'c', kind: 'enum', dtype: 'int8', shape: [3], nbytes: 3, members: { RED: '0', GREEN: '1' } });
    assert.equal(formatValue(colours), 'array([0, 1, 1], dtype=int8)  # enum {RED=0, GREEN=1}');
    assert.deepEqual(describeValue(Buffer.from('ab\0'), 'b', ['b']), { path: ['b'], name: 'b', kind: 'bytes', nbytes: 3, shape: [3] });
    assert.equal(formatValue(Buffer.from("a'\0\xff", 'latin1')), "b'a\\'\\x00\\xff'");
    class Particle {
      toState(): unknown {
        return { mass: 2 };
      }
    }
    assert.equal(describeValue(new Particle(), 'p', ['p']).kind, 'object');
    assert.equal(describeValue(new Particle(), 'p', ['p']).className, 'Particle');
    assert.equal(formatValue(new Particle()), "<Particle {'mass': 2}>");
    // A kind nobody taught the tool: shown by its constructor's name, not an error.
    assert.equal(describeValue(new Date(0), 'd', ['d']).kind, 'Date');
    assert.equal(formatValue({ when: new Date(0) }), "{'when': <Date>}");
  });
});
