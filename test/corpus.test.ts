/**
 * Every file of ../shared/fixtures/corpus (188 HDF5, .npy and .npz test files of h5py, PyTables,
 * hdf5-json, h5wasm, jsfive, numpy, npyjs and xtensor) opened with `Checkpointer.fromFile` and read
 * key by key, against what Debian's h5py and numpy read from the same file
 * (test/helpers/corpus_dump.py; the comparison is test/helpers/corpus.ts):
 *
 * - every key Python reads comes back equal, or is a CheckpointerError whose code and message name
 *   a feature the README lists as not read; so does every attribute of the root, groups and datasets;
 * - every key Python cannot read is a CheckpointerError or a value (reading more than h5py is fine);
 * - `keys()` lists the root's groups and datasets (no committed datatypes, no dangling links), and
 *   each of them reads whole; a dangling link is ERR_KEY;
 * - no plain JS exception, crash or hang (the reading runs in a child with a watchdog), and no file
 *   is changed by reading.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PYTHON, SHARED, tempDir } from './helpers/python';
import { sameValue } from './helpers/corpus';
import type { Canon, FileOutcome, KeyOutcome, PyFile } from './helpers/corpus';

const CORPUS = path.join(SHARED, 'fixtures', 'corpus');
const DUMPER = path.resolve(__dirname, '..', '..', 'test', 'helpers', 'corpus_dump.py');
const READER = path.join(__dirname, 'helpers', 'corpus.js');
/** No progress on one file for this long is a hang (the HDF5 verifier child alone has 30 s). */
const FILE_TIMEOUT_MS = 90_000;

/**
 * Features the package documents as not read (README, the table of HDF5 types under "Fidelity"): a
 * key or attribute Python reads may be ERR_UNSUPPORTED_DTYPE only when its message names one of these.
 */
const NOT_READ: readonly RegExp[] = [/region references/];

/**
 * Keys h5py 3.7 misreads, with the key whose h5py reading is the right one: PyTables'
 * vlunicode_endian.h5 stores the same text as variable-length sequences of big- and little-endian
 * uint32; h5py returns the big-endian one's integers byte-swapped (0x70000000 for 'p').
 */
const PEER_MISREADS: Readonly<Record<string, string>> = {
  'PyTables+PyTables/tables__tests__vlunicode_endian.h5 vlunicode_big': 'vlunicode_little',
};

interface Manifest {
  file: string;
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Runs the reader child over the dump, restarting it after a crash or hang on one file. */
async function readAll(dump: string, count: number): Promise<Map<string, FileOutcome | { failed: string }>> {
  const results = new Map<string, FileOutcome | { failed: string }>();
  let done = 0;
  while (done < count) {
    const child = spawn(process.execPath, [READER, dump, String(done)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let current: string | null = null;
    let buffered = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => child.kill('SIGKILL'), FILE_TIMEOUT_MS);
    };
    arm();
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buffered.slice(0, nl)) as { start: string } | FileOutcome;
        buffered = buffered.slice(nl + 1);
        arm();
        if ('start' in msg) current = msg.start;
        else {
          results.set(msg.file, msg);
          current = null;
          done++;
        }
      }
    });
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    clearTimeout(timer);
    if (current !== null) {
      results.set(current, { failed: signal === 'SIGKILL' ? `no progress for ${FILE_TIMEOUT_MS} ms (hang)` : `reader died (code ${code}, signal ${signal}): ${stderr}` });
      done++;
    } else if (done < count) {
      throw new Error(`the reader child stopped early (code ${code}, signal ${signal}): ${stderr}`);
    }
  }
  return results;
}

test('every corpus file reads key by key as h5py and numpy read it', { timeout: 30 * 60_000 }, async (t) => {
  const manifest = JSON.parse(fs.readFileSync(path.join(CORPUS, 'manifest.json'), 'utf8')) as Manifest[];
  const files = manifest.map((m) => path.join(CORPUS, m.file));
  const before = new Map(files.map((f) => [f, sha256(f)]));

  const dir = tempDir('checkpointer-corpus-');
  const dump = path.join(dir, 'python.jsonl');
  await new Promise<void>((resolve, reject) => {
    const py = spawn(PYTHON, [DUMPER, ...files], { stdio: ['ignore', fs.openSync(dump, 'w'), 'pipe'] });
    let err = '';
    py.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    py.on('close', (c) => (c === 0 ? resolve() : reject(new Error(`corpus_dump.py failed (${c}): ${err}`))));
  });
  const pyFiles = fs.readFileSync(dump, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as PyFile);
  assert.equal(pyFiles.length, files.length, 'Python read every file');

  const results = await readAll(dump, pyFiles.length);
  const problems: string[] = [];
  const tally = { files: pyFiles.length, keys: 0, equal: 0, notRead: 0, pythonCannot: 0, oursWherePythonCannot: 0, attrs: 0, attrsEqual: 0, attrsNotRead: 0 };
  const rel = (f: string): string => path.relative(CORPUS, f);
  const untyped = (where: string, o: KeyOutcome): void => {
    if (o.untyped !== undefined) problems.push(`${where}: not a CheckpointerError: ${o.untyped.split('\n').slice(0, 3).join(' | ')}`);
  };

  for (const py of pyFiles) {
    const r = results.get(py.file);
    const name = rel(py.file);
    if (!r) { problems.push(`${name}: no result`); continue; }
    if ('failed' in r) { problems.push(`${name}: ${r.failed}`); continue; }
    if (r.untypedOpen) { problems.push(`${name}: opening threw a plain exception: ${r.untypedOpen.split('\n')[0]}`); continue; }
    if (py.error !== null) {
      // Not a file h5py opens (not HDF5, or a link type h5py refuses): a typed error or a reading.
      if (r.open && /notahdf5file/.test(name)) assert.equal(r.open.code, 'ERR_CHECKPOINT_CORRUPT', name);
      for (const [k, o] of Object.entries(r.top)) untyped(`${name} [${k}]`, o);
      continue;
    }
    if (r.open) { problems.push(`${name}: cannot be opened: ${r.open.code}: ${r.open.message}`); continue; }
    const expectedTop = py.file.endsWith('.npy') ? ['arr_0'] : py.top;
    if (JSON.stringify([...r.keys!].sort()) !== JSON.stringify([...expectedTop].sort())) {
      problems.push(`${name}: keys() ${JSON.stringify(r.keys)} where h5py/numpy list ${JSON.stringify(expectedTop)}`);
    }
    for (const [k, o] of Object.entries(r.top)) untyped(`${name} [${k}] (whole)`, o);
    for (const [k, pyRead] of Object.entries(py.keys)) {
      tally.keys++;
      const misread = PEER_MISREADS[`${name} ${k}`];
      const pyValue = misread === undefined ? pyRead : py.keys[misread]!;
      const o = r.values[k]!;
      untyped(`${name} [${k}]`, o);
      const pyError = pyValue !== null && typeof pyValue === 'object' && !Array.isArray(pyValue) && '$error' in pyValue;
      if (pyError) {
        tally.pythonCannot++;
        if (o.value !== undefined) tally.oursWherePythonCannot++;
        continue;
      }
      if (o.value !== undefined) {
        if (sameValue(pyValue, o.value)) tally.equal++;
        else problems.push(`${name} [${k}]: read ${JSON.stringify(o.value).slice(0, 300)} where Python reads ${JSON.stringify(pyValue).slice(0, 300)}`);
      } else if (o.error) {
        if (o.error.code === 'ERR_UNSUPPORTED_DTYPE' && NOT_READ.some((re) => re.test(o.error!.message))) tally.notRead++;
        else problems.push(`${name} [${k}]: ${o.error.code}: ${o.error.message.slice(0, 300)}`);
      }
    }
    for (const [objectPath, pyAttrs] of Object.entries(py.attrs ?? {})) {
      const o = r.attrs[objectPath]!;
      const where = `${name} attrs(${objectPath === '' ? '' : JSON.stringify(objectPath)})`;
      untyped(where, o);
      if (o.error) { problems.push(`${where}: ${o.error.code}: ${o.error.message.slice(0, 300)}`); continue; }
      if ('$error' in pyAttrs) continue;
      const ours = (o.value ?? {}) as Record<string, unknown>;
      for (const [attr, pyValue] of Object.entries(pyAttrs)) {
        tally.attrs++;
        const v = ours[attr];
        const pyError = pyValue !== null && typeof pyValue === 'object' && !Array.isArray(pyValue) && '$error' in pyValue;
        if (v === undefined) { problems.push(`${where}: attribute ${JSON.stringify(attr)} missing`); continue; }
        const unsupported = v !== null && typeof v === 'object' && !Array.isArray(v) && 'unsupported' in v ? String(v.unsupported) : null;
        if (pyError) continue;
        if (unsupported !== null) {
          if (NOT_READ.some((re) => re.test(unsupported))) tally.attrsNotRead++;
          else problems.push(`${where}: attribute ${JSON.stringify(attr)} not read: ${unsupported.slice(0, 300)}`);
        } else if (sameValue(pyValue, v as Canon)) tally.attrsEqual++;
        else problems.push(`${where}: attribute ${JSON.stringify(attr)} read ${JSON.stringify(v).slice(0, 300)} where h5py reads ${JSON.stringify(pyValue).slice(0, 300)}`);
      }
    }
    for (const [k, o] of Object.entries(r.dangling)) {
      untyped(`${name} [${k}] (dangling link)`, o);
      if (o.error?.code !== 'ERR_KEY') problems.push(`${name} [${k}]: a dangling link gives ${o.error ? o.error.code : 'a value'}, not ERR_KEY`);
    }
  }
  for (const f of files) if (sha256(f) !== before.get(f)) problems.push(`${rel(f)}: changed by reading`);

  t.diagnostic(`corpus: ${JSON.stringify(tally)}; ${problems.length} problems`);
  fs.writeFileSync(path.join(dir, 'problems.txt'), problems.join('\n'));
  if (process.env.CHECKPOINTER_CORPUS_REPORT) fs.writeFileSync(process.env.CHECKPOINTER_CORPUS_REPORT, `${JSON.stringify(tally)}\n${problems.join('\n')}\n`);
  assert.deepEqual(problems.slice(0, 40), [], `${problems.length} corpus problems`);
});
