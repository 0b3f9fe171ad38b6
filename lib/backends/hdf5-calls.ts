/**
 * One code path for the sync and async HDF5 APIs: the backend and the dataset handles are written
 * as generators that yield native calls (`Call`s); `runSync` makes each with the addon's `xSync`
 * twin on this thread, `runAsync` awaits the `x` twin, which runs on the addon's HDF5 thread. The
 * zip and npy code do the same with file I/O (../formats/zip).
 *
 * Also here, once: opening a file and classifying why an open failed (locked, damaged, ...), which
 * the addon reports as plain facts (HDF5's error stack, errno).
 */
import { CheckpointerError, NO_SPACE } from '../errors';
import {
  AttrEntry, AttrValue, FileOp, H5Dataset, H5File, Hyperslab, loadNative, NativeError, OpenMode, OpResult, stableArray,
} from '../native';
import type { TypedArray } from '../values/dtype';
import {
  assertOpenable, attachDataset, attachReport, DamageReport, guardDatasetRead, guardOps, guardPath, readFailure, readsOnly, trustAfterWrite, verification,
} from './hdf5-verify';

/** A native call, made either way. */
export interface Call<T = unknown> {
  sync(): T;
  async(): Promise<T>;
}

export type H5Gen<T> = Generator<Call, T, unknown>;

export function runSync<T>(gen: H5Gen<T>): T {
  let step = gen.next();
  while (!step.done) {
    let value: unknown;
    try {
      value = step.value.sync();
    } catch (err) {
      step = gen.throw(err);
      continue;
    }
    step = gen.next(value);
  }
  return step.value;
}

export async function runAsync<T>(gen: H5Gen<T>): Promise<T> {
  let step = gen.next();
  while (!step.done) {
    let value: unknown;
    try {
      value = await step.value.async();
    } catch (err) {
      step = gen.throw(err);
      continue;
    }
    step = gen.next(value);
  }
  return step.value;
}

function* make<T>(c: Call<T>): H5Gen<T> {
  return (yield c) as T;
}

/** A call that is not HDF5's (file-system work beside it): `sync` on this thread, `async` as given. */
export function* fsCall<T>(sync: () => T, async: () => Promise<T>): H5Gen<T> {
  return yield* make({ sync, async });
}

/**
 * How long the event loop keeps turning after an async call is made, instead of sleeping until
 * the result arrives: most calls finish within microseconds on the HDF5 thread (which itself spins
 * that long between jobs), and waking a loop asleep in epoll costs ~30 µs on a VM — the bulk of a
 * small call's round trip. Bounded, so a long call lets the loop sleep; the loop keeps serving
 * I/O and timers meanwhile (it turns, it is not blocked).
 */
const POLL_NS = 200_000n;
let pollUntil = 0n;
let polling = false;

function poll(): void {
  if (process.hrtime.bigint() < pollUntil) setImmediate(poll);
  else polling = false;
}

function soon<T>(p: () => Promise<T>): Promise<T> {
  pollUntil = process.hrtime.bigint() + POLL_NS;
  if (!polling) {
    polling = true;
    setImmediate(poll);
  }
  return p();
}

// ------------------------------------------------------------------------------------- the calls

export function* exec(file: H5File, ops: readonly FileOp[]): H5Gen<OpResult[]> {
  guardOps(file, ops);
  try {
    return yield* make({
      sync: () => file.execSync(ops),
      // Views of resizable or shared buffers are copied: their memory may change under the HDF5 thread.
      async: () => soon(() => file.exec(ops.map(stableOp))),
    });
  } catch (err) {
    throw readsOnly(ops) ? readFailure(err, file.path) : err;
  }
}

function stableOp(op: FileOp): FileOp {
  if (op.op === 'createDataset' && op.data) return { ...op, data: stableArray(op.data) };
  if (op.op === 'createBytes') return { ...op, bytes: stableArray(op.bytes) };
  return op;
}

export function* closeFile(file: H5File): H5Gen<void> {
  const wrote = file.writable;
  yield* make({ sync: () => file.closeSync(), async: () => soon(() => file.close()) });
  if (wrote) trustAfterWrite(file);
}

export function* flushFile(file: H5File): H5Gen<void> {
  yield* make({ sync: () => file.flushSync(), async: () => soon(() => file.flush()) });
}

export function* openDataset(file: H5File, path: string): H5Gen<H5Dataset> {
  guardPath(file, path);
  try {
    const ds = yield* make({ sync: () => file.openDatasetSync(path), async: () => soon(() => file.openDataset(path)) });
    attachDataset(file, ds);
    return ds;
  } catch (err) {
    throw readFailure(err, file.path);
  }
}

export function* readInto(ds: H5Dataset, out: TypedArray, sel?: Hyperslab): H5Gen<void> {
  guardDatasetRead(ds, sel);
  try {
    yield* readIntoUnclassified(ds, out, sel);
  } catch (err) {
    throw readFailure(err, '');
  }
}

function* readIntoUnclassified(ds: H5Dataset, out: TypedArray, sel?: Hyperslab): H5Gen<void> {
  yield* make({
    sync: () => ds.readSync(out, sel),
    async: async () => {
      const target = stableArray(out);
      await soon(() => ds.read(target, sel));
      // A caller's resizable or shared buffer gets the data once it is read (if it still fits).
      if (target !== out) {
        if (out.length !== target.length) throw new RangeError(`the output array was resized from ${target.length} to ${out.length} elements during the read`);
        out.set(target as never);
      }
    },
  });
}

export function* writeFrom(ds: H5Dataset, data: TypedArray, sel?: Hyperslab): H5Gen<void> {
  yield* make({ sync: () => ds.writeSync(data, sel), async: () => soon(() => ds.write(stableArray(data), sel)) });
}

export function* resizeDataset(ds: H5Dataset, shape: readonly number[]): H5Gen<void> {
  yield* make({ sync: () => ds.resizeSync(shape), async: () => soon(() => ds.resize(shape)) });
}

export function* closeDataset(ds: H5Dataset): H5Gen<void> {
  yield* make({ sync: () => ds.closeSync(), async: () => soon(() => ds.close()) });
}

export function* datasetAttrs(ds: H5Dataset): H5Gen<AttrEntry[]> {
  try {
    return yield* make({ sync: () => ds.attrsSync(), async: () => soon(() => ds.attrs()) });
  } catch (err) {
    throw readFailure(err, '');
  }
}

export function* setDatasetAttr(ds: H5Dataset, name: string, value: AttrValue): H5Gen<void> {
  yield* make({ sync: () => ds.setAttrSync(name, value), async: () => soon(() => ds.setAttr(name, value)) });
}

export function* deleteDatasetAttr(ds: H5Dataset, name: string): H5Gen<void> {
  yield* make({ sync: () => ds.deleteAttrSync(name), async: () => soon(() => ds.deleteAttr(name)) });
}

// --------------------------------------------------------------------------------------- opening

/** Opens `path`; a failure is reported as the CheckpointerError it stands for. */
export function* openFile(path: string, mode: OpenMode): H5Gen<H5File> {
  const { H5File: File } = loadNative();
  // A file this process did not write is verified in a child process first (./hdf5-verify).
  const verify = mode === 'r' || mode === 'r+' ? verification(path) : null;
  const report: DamageReport | undefined = verify ? yield* make(verify) : undefined;
  if (report) assertOpenable(report, path);
  let file: H5File;
  try {
    file = yield* make({ sync: () => File.openSync(path, mode), async: () => soon(() => File.open(path, mode)) });
  } catch (err) {
    throw classifyOpenFailure(err, path, mode);
  }
  attachReport(file, report);
  return file;
}

/**
 * What an open failure means. OS-level (ERR_IO with errno): a missing directory or no permission
 * to create is ERR_NOT_WRITABLE. HDF5-level: a file lock held elsewhere, or the file already open
 * here in an incompatible mode, is ERR_LOCKED; any other failure to open an existing file is
 * ERR_CHECKPOINT_CORRUPT (not HDF5, truncated, damaged).
 */
export function classifyOpenFailure(err: unknown, path: string, mode: OpenMode): unknown {
  if (!(err instanceof CheckpointerError)) return err;
  const e = err as NativeError;
  const creating = mode === 'w' || mode === 'x';
  const fail = (code: CheckpointerError['code'], message: string): CheckpointerError => {
    const out = new CheckpointerError(message, { code, file: path, cause: err }) as NativeError;
    Object.defineProperties(out, {
      hdf5Stack: { value: e.hdf5Stack ?? [], enumerable: true },
      hdf5Minors: { value: e.hdf5Minors ?? [], enumerable: true },
    });
    if (e.sysCode) Object.defineProperty(out, 'sysCode', { value: e.sysCode, enumerable: true });
    return out;
  };
  if (e.code === 'ERR_IO' && e.sysCode) {
    const verb = creating ? 'create' : mode === 'r' ? 'read' : 'open for writing';
    switch (e.sysCode) {
      case 'ENOENT':
      case 'ENOTDIR':
        if (e.subject === 'directory') return fail(creating ? 'ERR_NOT_WRITABLE' : 'ERR_IO', `cannot ${verb} ${path}: its directory does not exist`);
        return fail('ERR_IO', `cannot open ${path}: no such file`);
      case 'EACCES':
      case 'EPERM':
      case 'EROFS':
        return fail('ERR_NOT_WRITABLE', `cannot ${verb} ${path}: permission denied`);
      case 'EEXIST':
        return fail('ERR_IO', `cannot create ${path}: the file already exists`);
      case 'EISDIR':
        return fail('ERR_IO', `cannot ${verb} ${path}: it is a directory`);
      default:
        return err;
    }
  }
  if (e.code !== 'ERR_HDF5') return err;
  const minors = e.hdf5Minors ?? [];
  const text = [e.message, ...(e.hdf5Stack ?? [])].join('\n');
  if (minors.some((m) => /unable to lock file/i.test(m)) || /unable to lock file/i.test(text)) {
    return fail('ERR_LOCKED', `cannot ${creating ? 'create' : 'open'} ${path}: another process (or handle) has the file open (lock held)`);
  }
  if (/consistency flags|h5clear/i.test(text)) {
    return fail('ERR_CHECKPOINT_CORRUPT', `cannot open ${path}: the process that wrote it died without closing it (HDF5's status flags are still set); `
      + 'its last flushed state may be readable: open it with { recover: true } to clear the flags, as h5clear -s does');
  }
  if (/already open/i.test(text)) {
    return fail('ERR_LOCKED', `cannot open ${path} in mode '${mode}': the file is already open in this process in an incompatible mode`);
  }
  if (creating) return err;
  const inner = /: ([^:]*)$/.exec(e.message)?.[1] ?? e.message;
  return fail('ERR_CHECKPOINT_CORRUPT', `cannot open ${path}: not a readable HDF5 file (damaged, truncated or another format: ${inner})`);
}

const ERRNO_NAME: Record<number, string> = { 28: 'ENOSPC', 122: 'EDQUOT', 27: 'EFBIG', 5: 'EIO' };

/**
 * What a failed write means, said about what the caller did (`what`, e.g. 'set key "x"') rather
 * than about the binding's temporary links: HDF5's "file write failed ... errno = 28" is
 * ERR_NO_SPACE; other HDF5 failures stay ERR_HDF5 with HDF5's innermost message.
 */
export function writeFailure(err: unknown, file: string, what: string): unknown {
  if (!(err instanceof CheckpointerError)) return err;
  const e = err as NativeError;
  if (e.code === 'ERR_IO' && e.sysCode && NO_SPACE[e.sysCode]) {
    return new CheckpointerError(`cannot ${what} in ${file}: ${e.message.replace(/^cannot write \d+ bytes to [^:]*: /, '')}`, { code: 'ERR_NO_SPACE', file, cause: err });
  }
  if (e.code !== 'ERR_HDF5') return err;
  const text = [e.message, ...(e.hdf5Stack ?? [])].join('\n');
  const errno = /errno = (\d+)/.exec(text);
  const sys = errno ? ERRNO_NAME[Number(errno[1])] : undefined;
  const inner = e.hdf5Stack?.length ? e.hdf5Stack[e.hdf5Stack.length - 1]!.replace(/^[A-Za-z0-9_]+\(\): /, '').replace(/, time = .*|: time = [^]*$/s, '') : e.message;
  const message = sys && NO_SPACE[sys] ? `cannot ${what} in ${file}: ${NO_SPACE[sys]}` : `cannot ${what} in ${file}: ${inner}`;
  const out = new CheckpointerError(message, { code: sys && NO_SPACE[sys] ? 'ERR_NO_SPACE' : 'ERR_HDF5', file, cause: err }) as NativeError;
  Object.defineProperties(out, {
    hdf5Stack: { value: e.hdf5Stack ?? [], enumerable: true },
    hdf5Minors: { value: e.hdf5Minors ?? [], enumerable: true },
  });
  if (sys) Object.defineProperty(out, 'sysCode', { value: sys, enumerable: true });
  return out;
}
