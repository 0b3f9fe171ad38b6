import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Checkpointer, CheckpointerError, CheckpointerKeyError, JSONCheckpointer, ndarray, registerClass, UnregisteredObject,
} from '../lib/index';
import { assertMatchesExpected } from './helpers/expected';
import { MCUTILS_FIXTURES, runPython, tempDir } from './helpers/python';

const dir = tempDir();
let n = 0;
const fresh = (ext = '.json'): string => path.join(dir, `t${n++}${ext}`);

describe('JSONCheckpointer: McUtils fixture', () => {
  it('loads every key of mcutils.json as expected.json says', async () => {
    const expected = JSON.parse(fs.readFileSync(path.join(MCUTILS_FIXTURES, 'expected.json'), 'utf8'))['mcutils.json'];
    const chk = Checkpointer.fromFile(path.join(MCUTILS_FIXTURES, 'mcutils.json'));
    assert.ok(chk instanceof JSONCheckpointer);
    await chk.with(async (c) => {
      assert.deepEqual(await c.keys(), Object.keys(expected));
      for (const key of Object.keys(expected)) assertMatchesExpected(await c.get(key), expected[key], key);
    });
  });

  it('reads the fixture without changing it (read-only file, no write bits)', () => {
    const file = path.join(MCUTILS_FIXTURES, 'mcutils.json');
    const before = fs.readFileSync(file);
    const chk = new JSONCheckpointer(file);
    chk.withSync((c) => c.getSync('bad'));
    assert.deepEqual(fs.readFileSync(file), before);
  });
});

describe('JSONCheckpointer: files Python reads and writes', () => {
  it("Python's json.load reads what we write, NaN and big integers included", async () => {
    const file = fresh();
    const chk = new JSONCheckpointer(file);
    await chk.with(async (c) => {
      await c.set('x', 1.5);
      await c.set('big', 2n ** 63n - 1n);
      await c.set('nan', NaN);
      await c.set('inf', [Infinity, -Infinity, -0]);
      await c.set('arr', ndarray(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]));
      await c.set('flags', ndarray(new Uint8Array([1, 0]), [2], 'bool'));
      await c.set('z', ndarray(new Float64Array([1, 2, 3, -4]), [2], 'complex128'));
      await c.set('text', 'héllo ☃');
      await c.set(['nested', 'deep'], { a: [1, 'b', null] });
    });
    const py = runPython(`
import json, sys, math
d = json.load(open(sys.argv[1]))
print(json.dumps({
  "keys": list(d.keys()), "x": d["x"], "big": str(d["big"]), "nan": math.isnan(d["nan"]),
  "inf": [str(v) for v in d["inf"]], "arr": d["arr"], "flags": d["flags"], "z": d["z"],
  "text": d["text"], "nested": d["nested"],
}))`, file);
    assert.deepEqual(py.keys, ['x', 'big', 'nan', 'inf', 'arr', 'flags', 'z', 'text', 'nested']);
    assert.equal(py.x, 1.5);
    assert.equal(py.big, '9223372036854775807');
    assert.equal(py.nan, true);
    assert.deepEqual(py.inf, ['inf', '-inf', '-0.0']);
    assert.deepEqual(py.arr, [[1, 2, 3], [4, 5, 6]]);
    assert.deepEqual(py.flags, [true, false]);
    assert.deepEqual(py.z, [[1, 2], [3, -4]]);
    assert.equal(py.text, 'héllo ☃');
    assert.deepEqual(py.nested, { deep: { a: [1, 'b', null] } });
  });

  it('reads what Python json.dump wrote, NaN tokens and exact big integers included', async () => {
    const file = fresh();
    runPython(`
import json, sys
json.dump({"a": float("nan"), "b": [float("inf"), -float("inf")], "c": 2**70, "d": {"z": 1, "y": 2}}, open(sys.argv[1], "w"))
print("null")`, file);
    const chk = new JSONCheckpointer(file);
    assert.ok(Number.isNaN(await chk.get('a')));
    assert.deepEqual(await chk.get('b'), [Infinity, -Infinity]);
    assert.equal(await chk.get('c'), 2n ** 70n);
    assert.deepEqual(Object.keys(await chk.get('d') as object), ['z', 'y']);
  });
});

describe('JSONCheckpointer: nothing lost', () => {
  it('a truncated file is ERR_CHECKPOINT_CORRUPT, named, and left untouched even by a write', async () => {
    const file = fresh();
    fs.writeFileSync(file, '{"a": [1, 2');
    const chk = new JSONCheckpointer(file);
    await assert.rejects(chk.get('a'), (e: CheckpointerError) => e.code === 'ERR_CHECKPOINT_CORRUPT' && e.file === file && e.message.includes(file));
    await assert.rejects(chk.set('a', 1), { code: 'ERR_CHECKPOINT_CORRUPT' });
    assert.throws(() => chk.setSync('a', 1), { code: 'ERR_CHECKPOINT_CORRUPT' });
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a": [1, 2');
    assert.equal(chk.isOpen, false);
  });

  it('an empty file is an empty checkpoint, as in McUtils', () => {
    const file = fresh();
    fs.writeFileSync(file, '');
    const chk = new JSONCheckpointer(file);
    assert.deepEqual(chk.keysSync(), []);
    chk.setSync('a', 1);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { a: 1 });
  });

  it('a non-JSON or non-object file is corrupt, not overwritten', () => {
    for (const content of [Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('[1, 2]'), Buffer.from('   ')]) {
      const file = fresh();
      fs.writeFileSync(file, content);
      assert.throws(() => new JSONCheckpointer(file).setSync('k', 1), { code: 'ERR_CHECKPOINT_CORRUPT' });
      assert.deepEqual(fs.readFileSync(file), content);
    }
  });

  it('an unstorable value throws TypeError before anything is written', async () => {
    const file = fresh();
    await new JSONCheckpointer(file).set('ok', 1);
    const before = fs.readFileSync(file);
    const chk = new JSONCheckpointer(file);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    for (const bad of [() => 1, Symbol('s'), cyclic, new Date(), { deep: [1, { f: () => 2 }] }, undefined]) {
      await assert.rejects(chk.set('bad', bad), TypeError);
    }
    await chk.with(async (c) => {
      await c.set('fine', 2);
      await assert.rejects(c.set('bad', new (class Foo {})()), /register its class/);
    });
    assert.deepEqual(await chk.keys(), ['ok', 'fine']);
    assert.notDeepEqual(fs.readFileSync(file), before);
  });

  it('writes atomically: an error while writing leaves the previous file intact and no temp file', async () => {
    const file = fresh();
    await new JSONCheckpointer(file).set('a', 1);
    const before = fs.readFileSync(file);
    const chk = new JSONCheckpointer(file);
    await chk.open();
    await chk.set('b', 2);
    // Make the rename fail (root ignores permissions): the target becomes a directory for a moment.
    try {
      fs.renameSync(file, file + '.moved');
      fs.mkdirSync(file);
      await assert.rejects(chk.close(), CheckpointerError);
      assert.equal(chk.isOpen, true, 'a failed close keeps the data open for a retry');
      fs.rmdirSync(file);
      fs.renameSync(file + '.moved', file);
      assert.deepEqual(fs.readFileSync(file), before);
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
      await chk.close();
      assert.deepEqual(await new JSONCheckpointer(file).keys(), ['a', 'b']);
    } finally {
      if (fs.existsSync(file + '.moved')) {
        fs.rmSync(file, { recursive: true, force: true });
        fs.renameSync(file + '.moved', file);
      }
    }
  });

  it('a kill mid-write leaves the previous file intact', () => {
    const file = fresh();
    new JSONCheckpointer(file).setSync('a', 'old');
    const before = fs.readFileSync(file);
    const script = `
const { JSONCheckpointer } = require(${JSON.stringify(path.resolve(__dirname, '..', 'lib', 'index.js'))});
const fs = require('node:fs');
const real = fs.fsyncSync;
fs.fsyncSync = (fd) => { real(fd); process.kill(process.pid, 'SIGKILL'); };
new JSONCheckpointer(${JSON.stringify(file)}).setSync('a', 'x'.repeat(1 << 20));`;
    const r = require('node:child_process').spawnSync(process.execPath, ['-e', script]);
    assert.equal(r.signal, 'SIGKILL');
    assert.deepEqual(fs.readFileSync(file), before);
  });

  it('does not replace a read-only file', () => {
    const file = fresh();
    new JSONCheckpointer(file).setSync('a', 1);
    fs.chmodSync(file, 0o444);
    assert.throws(() => new JSONCheckpointer(file).setSync('b', 2), { code: 'ERR_NOT_WRITABLE' });
    assert.deepEqual(new JSONCheckpointer(file).keysSync(), ['a']);
  });

  it('a missing directory is ERR_NOT_WRITABLE on write and an empty checkpoint on read', async () => {
    const file = path.join(dir, 'no', 'such', 'dir.json');
    await assert.rejects(new JSONCheckpointer(file).set('a', 1), { code: 'ERR_NOT_WRITABLE' });
    assert.deepEqual(await new JSONCheckpointer(file).keys(), []);
    assert.equal(fs.existsSync(path.dirname(file)), false);
  });

  it('reading never changes the file, and a missing file is not created by reads', async () => {
    const file = fresh();
    const chk = new JSONCheckpointer(file);
    assert.equal(await chk.get('nope', 7), 7);
    await assert.rejects(chk.get('nope'), CheckpointerKeyError);
    assert.equal(fs.existsSync(file), false);
    await chk.set('a', [1, 2]);
    const st = fs.statSync(file);
    await chk.with(async (c) => {
      await c.get('a');
      await c.keys();
    });
    assert.equal(fs.statSync(file).mtimeMs, st.mtimeMs);
  });

  it('nested opens write the file once, on the last close', async () => {
    const file = fresh();
    const chk = new JSONCheckpointer(file);
    await chk.open();
    await chk.open();
    await chk.set('a', 1);
    await chk.close();
    assert.equal(fs.existsSync(file), false, 'inner close does not write');
    assert.equal(chk.isOpen, true);
    await chk.close();
    assert.equal(chk.isOpen, false);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), { a: 1 });
  });
});

describe('JSONCheckpointer: objects', () => {
  class Holder {
    constructor(readonly data: Record<string, unknown>) {}
    toState(): unknown {
      return this.data;
    }
    static fromState(state: Record<string, unknown>): Holder {
      return new Holder(state);
    }
  }

  it('stores registered objects as McUtils pseudo-pickles and revives them', async () => {
    registerClass('JsonHolderClass', Holder);
    const file = fresh();
    await new JSONCheckpointer(file).set('h', new Holder({ x: 1, y: 's' }));
    const back = await new JSONCheckpointer(file).get('h');
    assert.ok(back instanceof Holder);
    assert.deepEqual(back.data, { x: 1, y: 's' });
    const py = runPython(`
import json, sys, base64, pickle, pickletools, io
d = json.load(open(sys.argv[1]))["h"]
ops = [op.name for op, arg, pos in pickletools.genops(base64.b64decode(d["class"]["pickle_data"]))]
args = [arg for op, arg, pos in pickletools.genops(base64.b64decode(d["class"]["pickle_data"])) if isinstance(arg, str)]
print(json.dumps({"state": d["state"], "proto": d["pseudopickle_protocol"], "args": args, "ops": ops}))`, file);
    assert.deepEqual(py.state, { x: 1, y: 's' });
    assert.deepEqual(py.args, ['__main__', 'JsonHolderClass']);
    assert.ok(py.ops.includes('STACK_GLOBAL'));
  });

  it('an unregistered stored class comes back as { className, state } and is written back unchanged', async () => {
    const file = fresh();
    await new JSONCheckpointer(file).set('o', new UnregisteredObject('pkg.mod.Thing', { a: 1 }));
    const back = await new JSONCheckpointer(file).get('o');
    assert.ok(back instanceof UnregisteredObject);
    assert.equal(back.className, 'pkg.mod.Thing');
    assert.deepEqual(back.state, { a: 1 });
  });
});

describe('JSONCheckpointer: deep documents', () => {
  it('parses and rewrites nesting up to 10,000 levels without the JS stack (deeper: ERR_CHECKPOINT_CORRUPT); a value deeper than 1,000 is ERR_UNSUPPORTED_VALUE', async () => {
    const file = fresh();
    const deep = `${'['.repeat(9000)}1.0${']'.repeat(9000)}`;
    fs.writeFileSync(file, `{"deep": ${deep}, "x": 1}`);
    await new JSONCheckpointer(file).with(async (c) => {
      await assert.rejects(c.get('deep'), (err: unknown) => err instanceof CheckpointerError && err.code === 'ERR_UNSUPPORTED_VALUE');
      await c.set('y', 2);
    });
    // the untouched deep key is written back exactly, float token included
    assert.equal(fs.readFileSync(file, 'utf8'), `{"deep": ${deep}, "x": 1, "y": 2}`);
    fs.writeFileSync(file, `{"deep": ${'['.repeat(10001)}${']'.repeat(10001)}}`);
    assert.throws(() => new JSONCheckpointer(file).keysSync(), (err: unknown) => err instanceof CheckpointerError && err.code === 'ERR_CHECKPOINT_CORRUPT' && /nesting too deep/.test(err.message));
  });
});
