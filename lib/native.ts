/**
 * The native HDF5 addon (binding/*.cpp): its whole JS surface as TypeScript interfaces, and the
 * loader. The addon is thin — h5py's low-level split: files, groups, datasets, hyperslab I/O on
 * TypedArrays — and all layout policy (chunk sizes, where values go) lives in TypeScript.
 *
 * Loading this module never throws: `loadNative()` does, with a CheckpointerError code
 * ERR_HDF5_UNAVAILABLE saying why (not built, libhdf5 missing or mismatched, disabled by
 * CHECKPOINTER_NO_NATIVE=1) and how to fix it. Errors the addon raises reach callers as
 * CheckpointerErrors (ERR_HDF5 with `hdf5Stack`, ERR_CHECKPOINT_CORRUPT, ERR_LOCKED, ...);
 * argument mistakes stay TypeError/RangeError.
 *
 * Paths inside a file are absolute ("/why/_list_item_0"). Sync methods block on the process-wide
 * HDF5 lock; the Promise-returning ones run on the libuv pool, one HDF5 job at a time per thread.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError, CheckpointerErrorCode } from './errors';
import type { DType, TypedArray } from './values/dtype';

// ------------------------------------------------------------------------------------ interfaces

/** 'r' read-only, 'r+' read-write (must exist), 'w' create or truncate, 'x' create (must not exist). */
export type OpenMode = 'r' | 'r+' | 'w' | 'x';

/** What a link points at; `kind()` returns null when nothing is linked at the path. */
export type LinkKind = 'group' | 'dataset' | 'other';

/** A hyperslab: `count[i]` elements from `start[i]` along each axis (C order in the TypedArray). */
export interface Selection {
  start: readonly number[];
  count: readonly number[];
}

export interface StringTypeInfo {
  /** Variable-length (h5py's `str`) rather than fixed-length (numpy `S`). */
  variable: boolean;
  /** Bytes of a fixed-length string; 0 when variable. */
  length: number;
  /** Character set UTF-8 (else ASCII). */
  utf8: boolean;
}

export interface DatasetFilters {
  compression: 'gzip' | null;
  level: number | null;
  shuffle: boolean;
}

export interface DatasetInfo {
  /** numpy's name of the element type, or 'string' for fixed/variable-length strings. */
  dtype: DType | 'string';
  /** [] for a scalar (0-d) or null dataspace. */
  shape: number[];
  /** null = unlimited. */
  maxshape: (number | null)[];
  /** null when not chunked. */
  chunks: number[] | null;
  /** A null dataspace (h5py.Empty; McUtils' None). */
  isNull: boolean;
  /** Present when dtype is 'string'. */
  stringType?: StringTypeInfo;
  filters: DatasetFilters;
}

export interface CreateDatasetOptions {
  dtype: DType;
  /** [] makes a scalar dataspace (no chunks, no filters). */
  shape: readonly number[];
  /** Same length as shape; null = unlimited. Differing from shape needs `chunks`. */
  maxshape?: readonly (number | null)[];
  chunks?: readonly number[];
  compression?: 'gzip' | null;
  /** 0..9, default 4 (h5py's). */
  compressionLevel?: number;
  /** Byte shuffle before deflate; needs chunks. */
  shuffle?: boolean;
  /** bigint for int64/uint64 exactly; complex fills the real part. */
  fillValue?: number | bigint | boolean;
}

/**
 * How `writeBytes` stores a byte string: 'void' = 0-d opaque (numpy np.void, lossless, non-empty),
 * 'S' = 0-d fixed-length NUL-padded string (numpy bytes_; numpy strips trailing NULs on read),
 * 'uint8' = 1-d uint8 array.
 */
export type BytesLayout = 'void' | 'S' | 'uint8';

/** An attribute value: numbers are stored as float64, bigints as int64 (uint64 above 2^63-1). */
export type AttrValue = number | bigint | boolean | string | string[] | TypedArray;

export interface H5File {
  /** The file's path as given to open. */
  readonly path: string;
  readonly isOpen: boolean;
  /** Opened with 'r+', 'w' or 'x'. */
  readonly writable: boolean;

  /** Closes every object the file owns, then the file. Throws ERR_BUSY while async ops are pending. */
  closeSync(): void;
  /** Closes after the async operations queued before it. */
  close(): Promise<void>;
  flushSync(): void;
  /** Open objects of this file other than the file itself (0 between calls). */
  openObjectCount(): number;

  kind(path: string): LinkKind | null;
  /** Child names: creation order when the group tracks it, else name order. */
  list(path: string): string[];
  /** Creates the group (and missing parents), link creation order tracked and indexed. */
  createGroup(path: string): void;
  /** Unlinks the object (the file does not shrink). */
  delete(path: string): void;

  /** Throws ERR_UNSUPPORTED_DTYPE for types other than numbers, h5py bool/complex and strings. */
  info(path: string): DatasetInfo;
  /** Creates the dataset (and missing parent groups); fails if the path exists. */
  createDataset(path: string, options: CreateDatasetOptions): void;
  /** A null-dataspace int32 dataset: how McUtils (h5py.Empty('i')) stores None. */
  createNull(path: string): void;
  resize(path: string, shape: readonly number[]): void;

  /** `data` must be the dtype's TypedArray (dtype.ts) holding exactly the selection's elements. */
  writeSync(path: string, data: TypedArray, selection?: Selection): void;
  /** As writeSync, off the event loop; `data` is kept alive and must not change until it settles. */
  write(path: string, data: TypedArray, selection?: Selection): Promise<void>;
  /** Reads into `out` (the dtype's TypedArray sized to the selection), converting to native order. */
  readSync(path: string, out: TypedArray, selection?: Selection): void;
  read(path: string, out: TypedArray, selection?: Selection): Promise<void>;

  /** Creates a variable-length UTF-8 string dataset; shape [] for a scalar (default [strings.length]). */
  writeStrings(path: string, strings: readonly string[], shape?: readonly number[]): void;
  /** Flat C-order strings of a fixed- or variable-length string dataset (fixed padding stripped). */
  readStrings(path: string): string[];
  /** Creates a byte-string dataset (default layout 'void'). */
  writeBytes(path: string, bytes: Uint8Array, layout?: BytesLayout): void;
  /** Bytes of a 0-d/1-d opaque, int8/uint8, or 0-d string dataset. */
  readBytes(path: string): Uint8Array;

  /** Sets (replaces) an attribute on the object at path. */
  setAttr(path: string, name: string, value: AttrValue): void;
  /** Scalars as number/bigint(64-bit ints)/boolean/string, arrays as TypedArray/string[], null dataspace as null. */
  getAttr(path: string, name: string): AttrValue | null;
  /** Creation order when tracked, else name order. */
  attrNames(path: string): string[];
  deleteAttr(path: string, name: string): void;
}

export interface H5FileClass {
  openSync(path: string, mode: OpenMode): H5File;
  open(path: string, mode: OpenMode): Promise<H5File>;
  /** True when the file exists and has an HDF5 signature. */
  isHDF5(path: string): boolean;
}

export interface NativeAddon {
  H5File: H5FileClass;
  /** Version of the libhdf5 in use, e.g. "1.10.8". */
  hdf5Version: string;
  napiVersion: number;
}

/** Errors from the addon: CheckpointerErrors carrying HDF5's error stack (outermost call first). */
export type NativeError = CheckpointerError & {
  hdf5Stack: readonly string[];
  /** The OS error behind ERR_NOT_WRITABLE/ERR_IO, e.g. 'ENOENT'. */
  sysCode?: string;
};

// ----------------------------------------------------------------------------------------- loader

const SYNC_METHODS = [
  'closeSync', 'flushSync', 'openObjectCount', 'kind', 'list', 'createGroup', 'delete', 'info',
  'createDataset', 'createNull', 'resize', 'writeSync', 'readSync', 'writeStrings', 'readStrings',
  'writeBytes', 'readBytes', 'setAttr', 'getAttr', 'attrNames', 'deleteAttr',
] as const;
const ASYNC_METHODS = ['close', 'write', 'read'] as const;

const ADDON_CODES: ReadonlySet<string> = new Set<CheckpointerErrorCode>([
  'ERR_HDF5', 'ERR_CHECKPOINT_CORRUPT', 'ERR_LOCKED', 'ERR_NOT_WRITABLE', 'ERR_CLOSED',
  'ERR_UNSUPPORTED_DTYPE', 'ERR_UNSUPPORTED_VALUE', 'ERR_IO', 'ERR_BUSY',
]);

const FIX = 'install libhdf5 (Debian/Ubuntu: apt-get install libhdf5-dev) and run `npm run build:native`';

let cached: NativeAddon | null = null;
let failure: CheckpointerError | null = null;

/** The package root: the nearest directory above this file whose package.json is ours. */
function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'checkpointer') return dir;
    } catch {
      // keep walking up
    }
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..');
    dir = up;
  }
}

function explain(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/No native build was found/.test(msg)) return `the addon is not built (${msg.split('\n')[0]}); ${FIX}`;
  if (/libhdf5[^\s:]*\.so[^:]*: cannot open shared object file/.test(msg)) {
    return `libhdf5 is not installed (${msg.trim()}); ${FIX}`;
  }
  if (/version mismatch/.test(msg)) return `${msg.trim()}`;
  return `the addon failed to load (${msg.trim()}); ${FIX}`;
}

/** Turns an addon error into a CheckpointerError (TypeError/RangeError and others pass through). */
export function wrapNativeError(err: unknown, file?: string): unknown {
  if (err instanceof CheckpointerError || !(err instanceof Error)) return err;
  const e = err as Error & { code?: unknown; hdf5Stack?: unknown; sysCode?: unknown };
  if (typeof e.code !== 'string' || !ADDON_CODES.has(e.code)) return err;
  const out = new CheckpointerError(e.message, { code: e.code as CheckpointerErrorCode, file, cause: err });
  Object.defineProperty(out, 'hdf5Stack', {
    value: Object.freeze(Array.isArray(e.hdf5Stack) ? [...(e.hdf5Stack as string[])] : []),
    enumerable: true,
  });
  if (typeof e.sysCode === 'string') Object.defineProperty(out, 'sysCode', { value: e.sysCode, enumerable: true });
  return out;
}

type AnyFn = (...args: unknown[]) => unknown;

function define(target: object, name: string, fn: AnyFn): void {
  Object.defineProperty(target, name, { value: fn, writable: true, configurable: true, enumerable: false });
}

/** Wraps the addon's methods in place so every failure surfaces as a CheckpointerError. */
function install(raw: Record<string, unknown>): NativeAddon {
  const ctor = raw.H5File as (AnyFn & Record<string, AnyFn>) | undefined;
  const proto = ctor?.prototype as Record<string, AnyFn> | undefined;
  const missing = [
    ...(['openSync', 'open', 'isHDF5'] as const).filter((m) => typeof ctor?.[m] !== 'function'),
    ...[...SYNC_METHODS, ...ASYNC_METHODS].filter((m) => typeof proto?.[m] !== 'function'),
  ];
  if (!ctor || !proto || missing.length > 0) {
    throw new Error(`the loaded addon is outdated (missing ${missing.join(', ') || 'H5File'}); run \`npm run build:native\``);
  }
  for (const name of SYNC_METHODS) {
    const fn = proto[name]!;
    define(proto, name, function (this: H5File, ...args: unknown[]) {
      try {
        return fn.apply(this, args);
      } catch (err) {
        throw wrapNativeError(err, this.path);
      }
    });
  }
  for (const name of ASYNC_METHODS) {
    const fn = proto[name]!;
    define(proto, name, function (this: H5File, ...args: unknown[]) {
      let p: Promise<unknown>;
      try {
        p = fn.apply(this, args) as Promise<unknown>;
      } catch (err) {
        return Promise.reject(wrapNativeError(err, this.path));
      }
      return p.catch((err: unknown) => {
        throw wrapNativeError(err, this.path);
      });
    });
  }
  const openSync = ctor.openSync!;
  const open = ctor.open!;
  const isHDF5 = ctor.isHDF5!;
  define(ctor, 'openSync', function (...args: unknown[]) {
    try {
      return openSync.apply(ctor, args);
    } catch (err) {
      throw wrapNativeError(err, typeof args[0] === 'string' ? args[0] : undefined);
    }
  });
  define(ctor, 'open', function (...args: unknown[]) {
    let p: Promise<unknown>;
    try {
      p = open.apply(ctor, args) as Promise<unknown>;
    } catch (err) {
      return Promise.reject(wrapNativeError(err, typeof args[0] === 'string' ? args[0] : undefined));
    }
    return p.catch((err: unknown) => {
      throw wrapNativeError(err, typeof args[0] === 'string' ? args[0] : undefined);
    });
  });
  define(ctor, 'isHDF5', function (...args: unknown[]) {
    try {
      return isHDF5.apply(ctor, args);
    } catch (err) {
      throw wrapNativeError(err, typeof args[0] === 'string' ? args[0] : undefined);
    }
  });
  return raw as unknown as NativeAddon;
}

function tryLoad(): void {
  if (cached || failure) return;
  if (process.env.CHECKPOINTER_NO_NATIVE === '1') {
    failure = new CheckpointerError(
      'the HDF5 addon is disabled by CHECKPOINTER_NO_NATIVE=1; unset it to use .hdf5/.h5 checkpoints',
      { code: 'ERR_HDF5_UNAVAILABLE' },
    );
    return;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => Record<string, unknown>;
    cached = install(nodeGypBuild(packageRoot()));
  } catch (err) {
    failure = new CheckpointerError(`HDF5 support is unavailable: ${explain(err)}`, {
      code: 'ERR_HDF5_UNAVAILABLE',
      cause: err,
    });
  }
}

/** The addon, loaded once. Throws CheckpointerError ERR_HDF5_UNAVAILABLE when it cannot load. */
export function loadNative(): NativeAddon {
  tryLoad();
  if (cached) return cached;
  throw failure!;
}

/** Why the addon cannot be used, or null when it loads. */
export function nativeUnavailableReason(): string | null {
  tryLoad();
  return cached ? null : failure!.message;
}
