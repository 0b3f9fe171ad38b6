import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';
import {
  Checkpointer, CheckpointerError, CheckpointerKeyError, DictCheckpointer, HDF5Checkpointer, JSONCheckpointer,
  NDArray, ndarray, NullCheckpointer, NumPyCheckpointer, registerClass,
} from '../lib/index';
import { tempDir } from './helpers/python';

const dir = tempDir();
let n = 0;
const fresh = (ext = '.json'): string => path.join(dir, `c${n++}${ext}`);

describe('Checkpointer.fromFile and the extension map', () => {
  it('picks the class by extension, case-insensitively', () => {
    assert.ok(Checkpointer.fromFile('a.json') instanceof JSONCheckpointer);
    assert.ok(Checkpointer.fromFile('a.JSON') instanceof JSONCheckpointer);
    assert.ok(Checkpointer.fromFile('a.npz') instanceof NumPyCheckpointer);
    assert.ok(Checkpointer.fromFile('a.Npy') instanceof NumPyCheckpointer);
    assert.ok(Checkpointer.fromFile('a.hdf5') instanceof HDF5Checkpointer);
    assert.ok(Checkpointer.fromFile('a.H5') instanceof HDF5Checkpointer);
  });

  it('an unknown extension is ERR_UNKNOWN_EXTENSION', () => {
    assert.throws(() => Checkpointer.fromFile('a.txt'), (e: CheckpointerError) => e.code === 'ERR_UNKNOWN_EXTENSION' && e.file === 'a.txt');
    assert.throws(() => Checkpointer.fromFile('noext'), { code: 'ERR_UNKNOWN_EXTENSION' });
  });

  it('extensionMap lists the classes; registerExtension adds one', () => {
    const map = Checkpointer.extensionMap();
    assert.equal(map['.json'], JSONCheckpointer);
    assert.equal(map['.npz'], NumPyCheckpointer);
    assert.equal(map['.hdf5'], HDF5Checkpointer);
    class MyJSON extends JSONCheckpointer {}
    Checkpointer.registerExtension('.MYJ', MyJSON);
    assert.ok(Checkpointer.fromFile(fresh('.myj')) instanceof MyJSON);
    assert.throws(() => Checkpointer.registerExtension('.x', Object as never), TypeError);
    assert.equal(JSONCheckpointer.defaultExtension, '.json');
    assert.equal(NumPyCheckpointer.defaultExtension, '.npz');
  });
});

describe('Checkpointer.buildCanonical', () => {
  it('dispatches like McUtils', () => {
    assert.ok(Checkpointer.buildCanonical(null) instanceof NullCheckpointer);
    assert.ok(Checkpointer.buildCanonical(undefined) instanceof NullCheckpointer);
    const j = Checkpointer.buildCanonical('x.json');
    assert.ok(j instanceof JSONCheckpointer);
    assert.equal(Checkpointer.buildCanonical(j), j);
    const d = { a: 1 };
    const dc = Checkpointer.buildCanonical(d);
    assert.ok(dc instanceof DictCheckpointer);
    assert.equal(dc.getSync('a'), 1);
    assert.ok(Checkpointer.buildCanonical(new Map([['a', 1]])) instanceof DictCheckpointer);
    assert.throws(() => Checkpointer.buildCanonical(42), TypeError);
  });

  it('{file, keys} applies key filters', () => {
    const a = Checkpointer.buildCanonical({ file: 'x.json', keys: ['a', 'b'] });
    assert.deepEqual([...a.allowedKeys!], ['a', 'b']);
    const b = Checkpointer.buildCanonical({ file: 'x.npz', keys: { allowed_keys: null, omitted_keys: ['c'] } });
    assert.ok(b instanceof NumPyCheckpointer);
    assert.equal(b.allowedKeys, null);
    assert.deepEqual([...b.omittedKeys!], ['c']);
  });
});

describe('scoping', () => {
  it('with() closes also when fn throws', async () => {
    const chk = new JSONCheckpointer(fresh());
    await assert.rejects(chk.with(async (c) => {
      await c.set('a', 1);
      assert.equal(c.isOpen, true);
      assert.ok(c.stream);
      throw new Error('boom');
    }), /boom/);
    assert.equal(chk.isOpen, false);
    assert.equal(chk.stream, undefined);
    assert.equal(await chk.get('a'), 1, 'what was set before the throw is written');
  });

  it('await using closes at the end of the block', async () => {
    const file = fresh();
    const chk = new JSONCheckpointer(file);
    {
      await using c = await chk.open();
      await c.set('x', [1, 2]);
      assert.equal(chk.isOpen, true);
    }
    assert.equal(chk.isOpen, false);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { x: [1, 2] });
  });

  it('operations outside a scope open and close around themselves', async () => {
    const file = fresh();
    const chk = new JSONCheckpointer(file);
    await chk.set('a', 1);
    assert.equal(chk.isOpen, false);
    assert.ok(fs.existsSync(file));
    chk.setSync('b', 2);
    assert.deepEqual(chk.keysSync(), ['a', 'b']);
  });

  it('a sync call while async work is in flight is ERR_BUSY; async calls run in order', async () => {
    const chk = new JSONCheckpointer(fresh());
    const p = chk.set('a', 1);
    assert.throws(() => chk.getSync('a'), { code: 'ERR_BUSY' });
    const results = await Promise.all([p, chk.set('a', 2), chk.get('a'), chk.set('a', 3), chk.get('a')]);
    assert.deepEqual(results.slice(2), [2, undefined, 3]);
  });

  it('String() and util.inspect name the class and file', () => {
    const chk = new JSONCheckpointer('run.json');
    assert.equal(String(chk), "JSONCheckpointer('run.json')");
    assert.equal(inspect(chk), "JSONCheckpointer('run.json')");
  });

  it('exposes the seed hooks', () => {
    const chk = new JSONCheckpointer(fresh());
    for (const hook of ['saveParameter', 'loadParameter', 'checkAllowedKey', 'openCheckpointFile', 'closeCheckpointFile'] as const) {
      assert.equal(typeof chk[hook], 'function', hook);
    }
    chk.withSync((c) => {
      c.saveParameterSync(['k'], 5);
      assert.equal(c.loadParameterSync(['k']), 5);
    });
  });
});

describe('dict-like API', () => {
  for (const make of [() => new JSONCheckpointer(fresh()), () => new DictCheckpointer({})]) {
    const name = make().constructor.name;
    it(`${name}: get/set/has/delete/keys, defaults, nested keys, sync twins`, async () => {
      const chk = make();
      await chk.set('a', 1);
      await chk.set(['p', 'q'], 'nested');
      chk.setSync('b', [true, null]);
      assert.equal(await chk.has('a'), true);
      assert.equal(chk.hasSync('zz'), false);
      assert.equal(await chk.get(['p', 'q']), 'nested');
      assert.deepEqual(await chk.get('p'), { q: 'nested' });
      assert.deepEqual(chk.getSync('b'), [true, null]);
      assert.equal(await chk.get('missing', null), null);
      assert.equal(chk.getSync('missing', 3), 3);
      await assert.rejects(chk.get('missing'), CheckpointerKeyError);
      assert.throws(() => chk.getSync(['p', 'nope']), CheckpointerKeyError);
      assert.deepEqual(await chk.keys(), ['a', 'p', 'b']);
      assert.equal(await chk.delete('a'), true);
      assert.equal(chk.deleteSync('a'), false);
      assert.deepEqual(chk.keysSync(), ['p', 'b']);
      await assert.rejects(chk.set(['b', 'x'], 1), CheckpointerKeyError, 'b holds a list, not a dict');
      await assert.rejects(chk.get(''), TypeError);
      await assert.rejects(chk.get([]), TypeError);
    });

    it(`${name}: cachedEval computes once`, async () => {
      const chk = make();
      let calls = 0;
      const compute = async (): Promise<number[]> => {
        calls++;
        return [1, 2, 3];
      };
      assert.deepEqual(await chk.cachedEval('c', compute), [1, 2, 3]);
      assert.deepEqual(await chk.cachedEval('c', compute), [1, 2, 3]);
      assert.equal(chk.cachedEvalSync('c', () => { calls++; return []; }).length, 3);
      assert.equal(calls, 1);
    });
  }
});

describe('key filters', () => {
  it('allowedKeys and omittedKeys apply to reads and writes', async () => {
    const file = fresh();
    await new JSONCheckpointer(file).with(async (c) => {
      await c.set('a', 1);
      await c.set('b', 2);
      await c.set('c', 3);
    });
    const allowed = new JSONCheckpointer(file, { allowedKeys: ['a', 'b'] });
    assert.deepEqual(await allowed.keys(), ['a', 'b']);
    await assert.rejects(allowed.get('c'), CheckpointerKeyError);
    await assert.rejects(allowed.set('d', 1), (e: CheckpointerKeyError) => e.code === 'ERR_KEY' && e.key === 'd');
    await assert.rejects(allowed.set(['c', 'x'], 1), CheckpointerKeyError);
    assert.equal(await allowed.has('c'), false);
    assert.equal(await allowed.get('c', 'dflt').catch((e) => e.code), 'ERR_KEY', 'a filtered key is an error even with a default');
    const omitted = new JSONCheckpointer(file, { omittedKeys: ['b'] });
    assert.deepEqual(omitted.keysSync(), ['a', 'c']);
    assert.throws(() => omitted.setSync('b', 0), CheckpointerKeyError);
    assert.throws(() => omitted.checkAllowedKey('b'), CheckpointerKeyError);
    assert.deepEqual(await new JSONCheckpointer(file).keys(), ['a', 'b', 'c']);
  });
});

describe('NullCheckpointer and DictCheckpointer', () => {
  it('NullCheckpointer discards writes and every read is a missing key', async () => {
    const chk = new NullCheckpointer();
    await chk.set('a', 1);
    assert.deepEqual(await chk.keys(), []);
    await assert.rejects(chk.get('a'), CheckpointerKeyError);
    assert.equal(await chk.get('a', 5), 5);
    assert.equal(String(chk), 'NullCheckpointer()');
  });

  it('DictCheckpointer writes into the caller object or Map', () => {
    const obj: Record<string, unknown> = {};
    new DictCheckpointer(obj).setSync(['x', 'y'], 1);
    assert.deepEqual(obj, { x: { y: 1 } });
    const map = new Map<string, unknown>();
    const chk = new DictCheckpointer(map);
    chk.setSync('k', ndarray([1, 2]));
    assert.ok(map.get('k') instanceof NDArray);
    assert.deepEqual(chk.keysSync(), ['k']);
  });
});

describe('values', () => {
  it('ndarray infers dtype and shape, checks sizes, accepts scijs-like objects', async () => {
    const a = ndarray(new Float32Array(6), [2, 3]);
    assert.equal(a.dtype, 'float32');
    assert.deepEqual(a.shape, [2, 3]);
    assert.equal(ndarray([1, 2, 3], undefined, 'int64').data instanceof BigInt64Array, true);
    assert.throws(() => ndarray(new Float64Array(5), [2, 3]), RangeError);
    assert.throws(() => new NDArray(new Float64Array(2), [2], 'int32'), TypeError);
    assert.deepEqual(ndarray(new Float64Array([1.5, 2]), [2], 'int32').data, new Int32Array([1, 2]));
    assert.deepEqual(ndarray(new Float64Array([1, 2, 3, 4]), [2], 'complex128').toList(), [[1, 2], [3, 4]]);
    // A strided (transposed) scijs-style view is gathered into C order.
    const chk = new DictCheckpointer({});
    await chk.set('t', { data: new Float64Array([1, 2, 3, 4, 5, 6]), shape: [3, 2], stride: [1, 3], offset: 0 });
    const t = await chk.get<Record<string, unknown>>('t');
    assert.ok(t);
    const json = new JSONCheckpointer(fresh());
    await json.set('t', { data: new Float64Array([1, 2, 3, 4, 5, 6]), shape: [3, 2], stride: [1, 3], offset: 0 });
    assert.deepEqual(await json.get('t'), [[1, 4], [2, 5], [3, 6]]);
  });

  it('registerClass needs toState and fromState', () => {
    assert.throws(() => registerClass('X', class {} as never), TypeError);
  });
});
