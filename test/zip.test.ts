import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { CheckpointerError } from '../lib/errors';
import {
  crc32, IoGen, readCentralDirectory, readMemberBytes, runAsync, runSync, WriteMember, writeZip, ZipEntry,
} from '../lib/formats/zip';
import { runPython, tempDir } from './helpers/python';

const dir = tempDir('zip-test-');
let n = 0;
const fresh = (ext = '.zip'): string => path.join(dir, `z${n++}${ext}`);

function withFd<T>(file: string, flags: string, fn: (fd: number) => T): T {
  const fd = fs.openSync(file, flags);
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeZipFile(file: string, members: WriteMember[], zip64Limit?: number): void {
  withFd(file, 'w', (fd) => runSync(writeZip(fd, members, zip64Limit === undefined ? {} : { zip64Limit })));
}

function readAll(file: string): { entries: ZipEntry[]; contents: Map<string, Buffer> } {
  return withFd(file, 'r', (fd) => {
    const { entries } = runSync(readCentralDirectory(fd));
    const contents = new Map<string, Buffer>();
    for (const e of entries) contents.set(e.name, runSync(readMemberBytes(fd, e)));
    return { entries, contents };
  });
}

function corruptCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CheckpointerError, String(err));
    return err.code;
  }
  assert.fail('expected an error');
}

/** Python's zipfile view of a file: names, sizes, compress types, extra fields, contents, testzip(). */
const PY_LIST = `
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
print(json.dumps({
  'bad': z.testzip(),
  'members': [{'name': i.filename, 'size': i.file_size, 'csize': i.compress_size, 'type': i.compress_type,
               'date': list(i.date_time), 'extra': i.extra.hex(), 'attr': i.external_attr, 'crc': i.CRC,
               'data': z.read(i.filename).hex()} for i in z.infolist()],
}))`;

interface PyZip {
  bad: string | null;
  members: { name: string; size: number; csize: number; type: number; date: number[]; extra: string; attr: number; crc: number; data: string }[];
}

describe('zip writer', () => {
  it("writes what Python's zipfile reads: stored members from several pieces, CRC-32, 1980 dates, mode 0600", () => {
    const file = fresh();
    const a = Buffer.from('hello ');
    const b = new Float64Array([1, 2, 3]);
    const big = new Uint8Array(20 * 1024 * 1024).map((_, i) => (i * 31) & 0xff); // spans several write chunks
    writeZipFile(file, [
      { name: 'a.npy', pieces: [a, new Uint8Array(b.buffer)] },
      { name: 'empty.npy', pieces: [] },
      { name: 'ünïcode::>|<::ключ.npy', pieces: [Buffer.from('x')] },
      { name: 'big.npy', pieces: [big.subarray(0, 5), big.subarray(5)] },
    ]);
    const py = runPython<PyZip>(PY_LIST, file);
    assert.equal(py.bad, null);
    assert.deepEqual(py.members.map((m) => m.name), ['a.npy', 'empty.npy', 'ünïcode::>|<::ключ.npy', 'big.npy']);
    assert.equal(py.members[0]!.data, Buffer.concat([a, Buffer.from(b.buffer)]).toString('hex'));
    assert.equal(py.members[1]!.size, 0);
    assert.equal(py.members[3]!.size, big.length);
    assert.equal(py.members[3]!.crc, zlib.crc32(big));
    for (const m of py.members) {
      assert.equal(m.type, 0);
      assert.deepEqual(m.date, [1980, 1, 1, 0, 0, 0]);
      assert.equal(m.attr, 0o600 << 16);
    }
  });

  it('writes ZIP64 fields and end records past the limit (forced low here), and zipfile reads them', () => {
    const file = fresh();
    writeZipFile(file, [
      { name: 'one.npy', pieces: [Buffer.from('first member')] },
      { name: 'two.npy', pieces: [Buffer.from('second')] },
    ], -1);
    const raw = fs.readFileSync(file);
    assert.ok(raw.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'ZIP64 end record');
    assert.ok(raw.includes(Buffer.from([0x50, 0x4b, 0x06, 0x07])), 'ZIP64 locator');
    const py = runPython<PyZip>(PY_LIST, file);
    assert.equal(py.bad, null);
    assert.deepEqual(py.members.map((m) => Buffer.from(m.data, 'hex').toString()), ['first member', 'second']);
    const ours = readAll(file);
    assert.deepEqual([...ours.contents.values()].map((b) => b.toString()), ['first member', 'second']);
  });

  it('copies members raw from another zip (stored and deflated stay as they are)', () => {
    const src = fresh();
    runPython(`
import zipfile, sys, json
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('plain.txt', b'stored bytes' * 100, compress_type=zipfile.ZIP_STORED)
    z.writestr('packed.txt', b'deflated bytes ' * 1000, compress_type=zipfile.ZIP_DEFLATED)
print(json.dumps(0))`, src);
    const out = fresh();
    withFd(src, 'r', (from) => {
      const { entries } = runSync(readCentralDirectory(from));
      const members: WriteMember[] = entries.map((entry) => ({ name: `copy-${entry.name}`, from: { fd: from, entry } }));
      members.push({ name: 'new.npy', pieces: [Buffer.from('new')] });
      writeZipFile(out, members);
    });
    const py = runPython<PyZip>(PY_LIST, out);
    assert.equal(py.bad, null);
    assert.deepEqual(py.members.map((m) => [m.name, m.type]), [['copy-plain.txt', 0], ['copy-packed.txt', 8], ['new.npy', 0]]);
    assert.equal(Buffer.from(py.members[1]!.data, 'hex').toString(), 'deflated bytes '.repeat(1000));
    assert.ok(py.members[1]!.csize < 1000);
  });

  it('the async runner writes the same bytes as the sync one', async () => {
    const a = fresh();
    const b = fresh();
    const data = new Uint8Array(17 * 1024 * 1024).map((_, i) => i & 0xff);
    const members: WriteMember[] = [{ name: 'x.npy', pieces: [Buffer.from('head'), data] }, { name: 'y.npy', pieces: [data.subarray(3, 9)] }];
    writeZipFile(a, members);
    const fh = await fs.promises.open(b, 'w');
    try {
      await runAsync(writeZip(fh.fd, members));
    } finally {
      await fh.close();
    }
    assert.ok(fs.readFileSync(a).equals(fs.readFileSync(b)));
  });
});

describe('zip reader', () => {
  it('reads what zipfile writes: stored, deflated, comments, prepended data, ZIP64 records', () => {
    const files = {
      plain: fresh(), comment: fresh(), prefixed: fresh(), zip64: fresh(), utf8: fresh(),
    };
    runPython(`
import zipfile, sys, json
f = json.loads(sys.argv[1])
def fill(z):
    z.writestr('s.bin', bytes(range(256)) * 10, compress_type=zipfile.ZIP_STORED)
    z.writestr('d.bin', b'abc' * 5000, compress_type=zipfile.ZIP_DEFLATED)
    z.writestr('e.bin', b'', compress_type=zipfile.ZIP_STORED)
with zipfile.ZipFile(f['plain'], 'w') as z: fill(z)
with zipfile.ZipFile(f['comment'], 'w') as z:
    fill(z); z.comment = b'PK\\x05\\x06 a comment that looks like an end record'
with open(f['prefixed'], 'wb') as out:
    out.write(b'#!/bin/sh\\nexit 0\\n' * 10)
    with zipfile.ZipFile(out, 'w') as z: fill(z)
zipfile.ZIP64_LIMIT = 10  # every size and offset above 10 goes to ZIP64 fields
with zipfile.ZipFile(f['zip64'], 'w') as z: fill(z)
zipfile.ZIP64_LIMIT = (1 << 31) - 1
with zipfile.ZipFile(f['utf8'], 'w') as z: z.writestr('naïve ☃.npy', b'u')
print(json.dumps(0))`, JSON.stringify(files));
    for (const [kind, file] of Object.entries(files)) {
      const { entries, contents } = readAll(file);
      if (kind === 'utf8') {
        assert.deepEqual(entries.map((e) => e.name), ['naïve ☃.npy']);
        continue;
      }
      assert.deepEqual(entries.map((e) => e.name), ['s.bin', 'd.bin', 'e.bin'], kind);
      assert.deepEqual(entries.map((e) => e.method), [0, 8, 0], kind);
      assert.ok(contents.get('s.bin')!.equals(Buffer.from(Array.from({ length: 2560 }, (_, i) => i & 0xff))), kind);
      assert.equal(contents.get('d.bin')!.toString(), 'abc'.repeat(5000), kind);
      assert.equal(contents.get('e.bin')!.length, 0, kind);
    }
    assert.ok(fs.readFileSync(files.zip64).includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'zip64 file has a ZIP64 end record');
  });

  it('finds one member without reading the others', () => {
    const file = fresh();
    writeZipFile(file, [
      { name: 'a.npy', pieces: [Buffer.from('A'.repeat(1000))] },
      { name: 'b.npy', pieces: [Buffer.from('B'.repeat(1000))] },
    ]);
    // Damage b's data: a still reads; b fails its CRC check.
    const raw = fs.readFileSync(file);
    const at = raw.indexOf('BBBB');
    raw[at + 10] = 0x43;
    fs.writeFileSync(file, raw);
    withFd(file, 'r', (fd) => {
      const { entries } = runSync(readCentralDirectory(fd));
      assert.equal(runSync(readMemberBytes(fd, entries[0]!)).toString(), 'A'.repeat(1000));
      assert.equal(corruptCode(() => runSync(readMemberBytes(fd, entries[1]!))), 'ERR_CHECKPOINT_CORRUPT');
    });
  });

  it('reports truncated and garbage files as ERR_CHECKPOINT_CORRUPT', () => {
    const file = fresh();
    writeZipFile(file, [{ name: 'a.npy', pieces: [Buffer.alloc(5000, 7)] }, { name: 'b.npy', pieces: [Buffer.alloc(10, 1)] }]);
    const raw = fs.readFileSync(file);
    const cases: [string, Buffer][] = [
      ['empty-ish', Buffer.alloc(10)],
      ['garbage', Buffer.from('this is not a zip file, only text; '.repeat(20))],
      ['truncated end', raw.subarray(0, raw.length - 5)],
      ['truncated middle', raw.subarray(0, 3000)],
      ['cut before the directory', Buffer.concat([raw.subarray(0, 100), raw.subarray(raw.length - 200)])],
    ];
    for (const [what, bytes] of cases) {
      const f = fresh();
      fs.writeFileSync(f, bytes);
      assert.equal(corruptCode(() => readAll(f)), 'ERR_CHECKPOINT_CORRUPT', what);
    }
    // A central directory that points outside the file.
    const bad = Buffer.from(raw);
    const cd = bad.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bad.writeUInt32LE(0x7ffffff0, cd + 42);
    const f = fresh();
    fs.writeFileSync(f, bad);
    assert.equal(corruptCode(() => readAll(f)), 'ERR_CHECKPOINT_CORRUPT');
  });

  it('refuses methods other than stored/deflate with ERR_UNSUPPORTED_DTYPE', () => {
    const file = fresh();
    runPython(`
import zipfile, sys, json
with zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('x.npy', b'data' * 100, compress_type=zipfile.ZIP_BZIP2)
print(json.dumps(0))`, file);
    assert.equal(corruptCode(() => readAll(file)), 'ERR_UNSUPPORTED_DTYPE');
  });

  it('the async runner reads the same entries and bytes', async () => {
    const file = fresh();
    const data = new Uint8Array(9 * 1024 * 1024 + 3).map((_, i) => (i * 7) & 0xff);
    writeZipFile(file, [{ name: 'x.npy', pieces: [data] }]);
    const fh = await fs.promises.open(file, 'r');
    try {
      const { entries } = await runAsync(readCentralDirectory(fh.fd));
      const got = await runAsync(readMemberBytes(fh.fd, entries[0]!));
      assert.ok(Buffer.from(data).equals(got));
      assert.equal(crc32(got), entries[0]!.crc32);
    } finally {
      await fh.close();
    }
  });

  it('an error thrown inside a generator propagates after deferred I/O settled', async () => {
    const file = fresh();
    fs.writeFileSync(file, Buffer.alloc(1024));
    const fh = await fs.promises.open(file, 'r');
    function* failing(): IoGen<void> {
      yield { op: 'read', fd: fh.fd, buffer: new Uint8Array(512), position: 0, defer: true };
      throw new Error('boom');
    }
    try {
      await assert.rejects(runAsync(failing()), /boom/);
      assert.throws(() => runSync(failing()), /boom/);
    } finally {
      await fh.close();
    }
  });
});

describe('ZIP64 at real size', { skip: process.env.CHECKPOINTER_LARGE_TESTS ? false : 'set CHECKPOINTER_LARGE_TESTS=1 (writes ~2.2 GB)' }, () => {
  it('reads a member that starts past 2 GiB (ZIP64 offsets and end records numpy-sized)', () => {
    const file = path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : dir, `big-${process.pid}.zip`);
    try {
      runPython(`
import zipfile, sys, json
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    with z.open('big.npy', 'w', force_zip64=True) as f:
        block = bytes(1 << 24)
        for _ in range(129): f.write(block)
    z.writestr('small.npy', b'after the big one')
print(json.dumps(0))`, file);
      withFd(file, 'r', (fd) => {
        const { entries } = runSync(readCentralDirectory(fd));
        assert.deepEqual(entries.map((e) => e.name), ['big.npy', 'small.npy']);
        assert.equal(entries[0]!.uncompressedSize, 129 * 2 ** 24);
        assert.ok(entries[1]!.localHeaderOffset > 2 ** 31);
        assert.equal(runSync(readMemberBytes(fd, entries[1]!)).toString(), 'after the big one');
      });
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
