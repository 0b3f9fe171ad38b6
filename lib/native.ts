/**
 * The native HDF5 addon (binding/*.cpp): its surface, declared as the classes it exports
 * (`export declare class`, as zeromq.js does), and the loader.
 *
 * The addon is thin: one JS class per HDF5 kind (H5File owns the H5Dataset and H5Group objects
 * opened from it; closing it closes them; a closed object's calls are ERR_CLOSED), checked HDF5
 * calls, and `H5File.exec`, which runs a batch of path-based ops (walk a tree, create groups and
 * datasets, move and delete links, attributes) in one call. What to do — McUtils' layout, the
 * temporary-link-then-swap of a `set`, which HDF5 failure is which CheckpointerError, option
 * validation — is decided in TypeScript (lib/backends/hdf5*.ts, lib/dataset/hdf5-dataset.ts).
 *
 * Every method has a sync twin (`xSync`), which runs on the calling thread under the process-wide
 * HDF5 lock, and an async one, which queues the same work on the addon's HDF5 thread and returns a
 * Promise: the async API never waits on the HDF5 lock on a JS thread. Errors are CheckpointerErrors
 * (the class is handed to the addon at load) carrying HDF5's error stack; argument mistakes are
 * TypeError/RangeError.
 *
 * Loading this module never throws: `loadNative()` does, with ERR_HDF5_UNAVAILABLE saying why (not
 * built, libhdf5 missing or mismatched, disabled by CHECKPOINTER_NO_NATIVE=1) and how to fix it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CheckpointerError } from './errors';
import { isUnstableView } from './values/dtype';
import type { DType, TypedArray } from './values/dtype';
import type { IntDType } from './values/records';

// ------------------------------------------------------------------------------------ the surface

/** 'r' read-only, 'r+' read-write (must exist), 'w' create or truncate, 'x' create (must not exist). */
/**
 * 'r' read-only, 'r+' read-write, 'w' create or truncate, 'x' create (fails if it exists),
 * 'recover' read-write after clearing the status flags a writer that died left set (h5clear -s).
 */
export type OpenMode = 'r' | 'r+' | 'w' | 'x' | 'recover';

/**
 * A hyperslab: for each axis its start, then each stride, then each count, in one Float64Array
 * (`hyperslab()` builds it). One typed array is what the addon reads fastest.
 */
export type Hyperslab = Float64Array;

export function hyperslab(start: readonly number[], stride: readonly number[], count: readonly number[]): Hyperslab {
  const rank = start.length;
  const out = new Float64Array(3 * rank);
  for (let i = 0; i < rank; i++) {
    out[i] = start[i]!;
    out[rank + i] = stride[i]!;
    out[2 * rank + i] = count[i]!;
  }
  return out;
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
  compression: 'gzip' | 'zstd' | 'lz4' | null;
  level: number | null;
  shuffle: boolean;
  /** Filters other than deflate and shuffle. */
  other: number;
}

/**
 * A stored element type as the addon describes it (binding/h5types.h TypeNode), and the form a type
 * to create takes (`size` and field `offset`s are then recomputed by the addon, packed in field
 * order). `size` is the bytes of one element in memory (native byte order), `dims` the H5T_ARRAY
 * axes folded into the node (outermost first; [] when none).
 */
export type H5Type =
  /** bitfield: an HDF5 bitfield read as unsigned integers (h5py's dtype); converted: a float that is not IEEE binary16/32/64 (long double), read as float64. */
  | { class: 'number'; dtype: DType; size: number; dims: number[]; bitfield?: true; converted?: string }
  | { class: 'enum'; dtype: IntDType; size: number; dims: number[]; members: [string, number | bigint][] }
  /** length: bytes of a fixed-length string (0 when variable). */
  | { class: 'string'; variable: boolean; length: number; utf8: boolean; pad: 'nullterm' | 'nullpad' | 'spacepad'; size: number; dims: number[] }
  | { class: 'opaque'; size: number; dims: number[]; tag: string }
  | { class: 'compound'; size: number; dims: number[]; fields: { name: string; offset: number; type: H5Type }[] }
  /** A variable-length sequence of numbers. */
  | { class: 'vlen'; size: number; dims: number[]; base: H5Type }
  /** An object reference (1.8/1.10 format): read as the object's path, null for a null or dangling one. */
  | { class: 'reference'; size: number; dims: number[] };

/** One variable-length part of packed data: a string (a Buffer when not UTF-8), a sequence's numbers, a reference's path, or null. */
export type SideItem = string | Buffer | TypedArray | null;

export interface DatasetInfo {
  /**
   * numpy's name of the element type, 'string' for strings, 'packed' for other types (their
   * elements are read as packed bytes of `type`); null when the type is not read (see `unsupported`).
   */
  dtype: DType | 'string' | 'packed' | null;
  /** The stored type (set for every supported dataset): an enum's members, array axes, compound fields. */
  type?: H5Type;
  /** dtype is 'packed'. */
  packed?: boolean;
  /** What the stored type is, when `dtype` is null. */
  unsupported?: string;
  /** An opaque type (np.void). */
  opaque: boolean;
  /** [] for a scalar (0-d) or null dataspace. */
  shape: number[];
  /** null = unlimited. */
  maxshape: (number | null)[];
  /** null when not chunked. */
  chunks: number[] | null;
  /** A null dataspace (h5py.Empty; McUtils' None). */
  isNull: boolean;
  isScalar: boolean;
  /** Bytes of raw data allocated in the file (compressed chunks' size when filtered): only from a walk with `storageSizes`. */
  storageBytes?: number;
  /** Present when dtype is 'string'. */
  stringType?: StringTypeInfo;
  filters: DatasetFilters;
}

/** What `createDataset` makes; validated by lib/dataset/hdf5-dataset.ts and the layout writer. */
export interface DatasetSpec {
  /** 'packed': elements of `type` given as packed bytes (a Uint8Array). */
  dtype: DType | 'packed';
  /** The element type: needed for 'packed'; with a numeric dtype, an enum of it. */
  type?: H5Type;
  /** [] makes a scalar dataspace (no chunks, no filters). */
  shape: readonly number[];
  /** Same length as shape; null = unlimited. Differing from shape needs `chunks`. */
  maxshape?: readonly (number | null)[];
  chunks?: readonly number[];
  compression?: 'gzip' | 'zstd' | 'lz4' | null;
  compressionLevel?: number;
  shuffle?: boolean;
  /** bigint for int64/uint64 exactly; complex fills the real part. */
  fillValue?: number | bigint | boolean;
}

/**
 * How `createBytes` stores a byte string: 'void' = 0-d opaque (numpy np.void, lossless, non-empty),
 * 'S' = 0-d fixed-length NUL-padded string (numpy bytes_), 'uint8' = 1-d uint8 array.
 */
export type BytesLayout = 'void' | 'S' | 'uint8';

/** Packed elements of a described type (lib/backends/hdf5-types.ts makes them from RecordArrays, EnumArrays, float16). */
export interface PackedAttr {
  type: H5Type;
  /** [] for a scalar attribute. */
  shape: number[];
  data: Uint8Array;
  /** The variable-length strings of the elements, depth-first (writing). */
  strings?: string[];
}
/** An attribute value: numbers are stored as float64, bigints as int64 (uint64 above 2^63-1). */
export type AttrValue = number | bigint | boolean | string | string[] | TypedArray | PackedAttr;
/**
 * How an attribute reads back: as set, null for an empty one, `{unsupported}` for a type not read;
 * text that is not UTF-8 as a Buffer; types other than plain numbers and strings (compound, enum,
 * array, float16, opaque, vlen, references) as packed elements with their variable-length parts
 * in `side` (decodePacked in lib/backends/hdf5-types.ts makes the value).
 */
export type AttrRead =
  | number | bigint | boolean | string | Buffer | (string | Buffer)[] | TypedArray
  | null
  | { unsupported: string }
  | { type: H5Type; shape: number[]; data: Uint8Array; side: SideItem[] };
export type AttrEntry = [name: string, value: AttrRead];

/**
 * The kinds `lookup` reports for each prefix of a path, down to the first missing one or non-group,
 * soft links followed: 'external' an external link (not followed: its file is opened by
 * TypeScript), 'dangling' a soft link to nothing, 'link' a soft-link cycle or a user-defined link.
 */
export type LookupKind = 'group' | 'dataset' | 'datatype' | 'external' | 'dangling' | 'link';

/** A link that does not lead to an object of its file (a `WalkNode` of kind 'link'). */
export type LinkNode = Extract<WalkNode, { kind: 'link' }>;

/** What `resolve` gives: the kinds `lookup` gives, and the link where resolution stopped (null at an object or a missing name). */
export interface ResolveResult {
  kinds: LookupKind[];
  link: LinkNode | null;
}

/** A child of a group (`entries`) and what it leads to. */
export interface LinkEntry {
  name: string;
  kind: LookupKind | 'error';
  /** external: the object path in the other file (with the path below it); dangling: the soft link's value; error: why. */
  target?: string;
  /** external: the file name as stored in the link. */
  file?: string;
}

/** One op of `H5File.exec`; paths are absolute ("/why/_list_item_0"). */
export type FileOp =
  /** The tree at `path` (null when missing); numeric datasets up to `inlineBytes` come with their data. */
  | { op: 'walk'; path: string; inlineBytes?: number; inlineTotal?: number; skip?: readonly string[]; storageSizes?: boolean }
  | { op: 'lookup'; path: string }
  /**
   * `lookup`, and the link where resolution stopped (an external link: its file and target).
   * `stopIfFound`: when anything is there (a prefix exists, or a link stopped resolution), the batch
   * ends after this op, its later ops not run (the results are shorter than the ops): one call to
   * create a key that is new, and what it found when it is not.
   */
  | { op: 'resolve'; path: string; stopIfFound?: boolean }
  /** The children of a group and what each leads to; those in `skip` (damaged) are 'error' entries, not opened. */
  | { op: 'entries'; path: string; skip?: readonly string[] }
  /** Sets and deletes attributes as one change: a failure leaves every attribute as it was; deleting a missing one is ERR_KEY. */
  | { op: 'updateAttrs'; path: string; set: readonly (readonly [string, AttrValue])[]; delete: readonly string[] }
  /** Child names: creation order when the group tracks it, else name order. */
  | { op: 'list'; path: string }
  /** Links and attributes tracked in creation order; the parent must exist. */
  | { op: 'createGroup'; path: string }
  /** strings: the variable-length strings of packed data, depth-first. */
  | { op: 'createDataset'; path: string; spec: DatasetSpec; data?: TypedArray; strings?: readonly string[] }
  /** Variable-length UTF-8 strings; shape [] for a scalar. */
  | { op: 'createStrings'; path: string; strings: readonly string[]; shape: readonly number[] }
  | { op: 'createBytes'; path: string; bytes: Uint8Array; layout: BytesLayout }
  /** A null-dataspace int32 dataset: how McUtils (h5py.Empty('i')) stores None. */
  | { op: 'createNull'; path: string }
  | { op: 'read'; path: string; out: TypedArray; sel?: Hyperslab }
  | { op: 'move'; path: string; to: string }
  /** Unlinks the object (the space is reused by later writes). */
  | { op: 'delete'; path: string }
  | { op: 'attrs'; path: string }
  /** Validate, then replace: a failed write leaves the old attribute. */
  | { op: 'setAttr'; path: string; name: string; value: AttrValue }
  | { op: 'deleteAttr'; path: string; name: string }
  /** Fails (ERR_IO, sysCode ENOSPC or EFBIG) unless the file has room to grow by `bytes`; changes nothing. */
  | { op: 'reserve'; path: string; bytes: number };

export type WalkNode =
  | { kind: 'group'; names: string[]; children: (WalkNode | null)[] }
  /** data: numbers, or packed elements (a Uint8Array) with their variable-length parts in `side`; strings: a Buffer where not UTF-8. */
  | { kind: 'dataset'; info: DatasetInfo; data?: TypedArray; side?: SideItem[]; strings?: (string | Buffer)[] }
  /**
   * Not an object of this file: an external link (`file` as stored, `target` the object path in it
   * with the path below), a dangling soft link (`target` its value), a committed datatype, soft
   * links in a cycle, a user-defined link. `link` is where the link is.
   */
  | { kind: 'link'; linkType: 'external' | 'soft' | 'datatype' | 'cycle' | 'user-defined'; link?: string; target?: string; file?: string }
  /** This node could not be read (its siblings were). */
  | { kind: 'error'; error: NativeError }
  /**
   * Never made by the addon: the backend splices an external link's target in as the tree of its
   * own file (`file`, named `fileName`), walked at `path` there.
   */
  | { kind: 'mounted'; file: H5File; fileName: string; path: string; node: WalkNode | null };

/** What each op gives back: walk → WalkNode | null, lookup → LookupKind[], list → names, attrs → entries. */
export type OpResult = WalkNode | null | string[] | AttrEntry[] | ResolveResult | LinkEntry[] | undefined;

export declare class H5File {
  private constructor();
  static openSync(path: string, mode: OpenMode): H5File;
  static open(path: string, mode: OpenMode): Promise<H5File>;
  /** True when the file exists and has an HDF5 signature. */
  static isHDF5(path: string): boolean;
  readonly path: string;
  readonly isOpen: boolean;
  /** Opened with 'r+', 'w', 'x' or 'recover'. */
  readonly writable: boolean;
  /** Closes every dataset and group opened from the file, then the file. */
  closeSync(): void;
  close(): Promise<void>;
  flushSync(): void;
  flush(): Promise<void>;
  /** HDF5 objects of this file open right now (the binding's own handles included). */
  openObjectCount(): number;
  /** Runs the ops in order; the first failure rejects with `opIndex` set (the ops before it ran). */
  execSync(ops: readonly FileOp[]): OpResult[];
  exec(ops: readonly FileOp[]): Promise<OpResult[]>;
  openDatasetSync(path: string): H5Dataset;
  openDataset(path: string): Promise<H5Dataset>;
  openGroupSync(path: string): H5Group;
  openGroup(path: string): Promise<H5Group>;
}

/** An open dataset: its id, type and chunk cache stay open between calls. */
export declare class H5Dataset {
  private constructor();
  readonly path: string;
  readonly isOpen: boolean;
  /** Read when the dataset was opened (a resize does not update it). */
  readonly info: DatasetInfo;
  /** Reads the selection (all without one) into `out`: the dtype's TypedArray, exactly its size. */
  readSync(out: TypedArray, sel?: Hyperslab): void;
  read(out: TypedArray, sel?: Hyperslab): Promise<void>;
  writeSync(data: TypedArray, sel?: Hyperslab): void;
  write(data: TypedArray, sel?: Hyperslab): Promise<void>;
  resizeSync(shape: readonly number[]): void;
  resize(shape: readonly number[]): Promise<void>;
  extentSync(): number[];
  extent(): Promise<number[]>;
  attrsSync(): AttrEntry[];
  attrs(): Promise<AttrEntry[]>;
  setAttrSync(name: string, value: AttrValue): void;
  setAttr(name: string, value: AttrValue): Promise<void>;
  deleteAttrSync(name: string): void;
  deleteAttr(name: string): Promise<void>;
  closeSync(): void;
  close(): Promise<void>;
}

export declare class H5Group {
  private constructor();
  readonly path: string;
  readonly isOpen: boolean;
  namesSync(): string[];
  names(): Promise<string[]>;
  attrsSync(): AttrEntry[];
  attrs(): Promise<AttrEntry[]>;
  setAttrSync(name: string, value: AttrValue): void;
  setAttr(name: string, value: AttrValue): Promise<void>;
  deleteAttrSync(name: string): void;
  deleteAttr(name: string): Promise<void>;
  closeSync(): void;
  close(): Promise<void>;
}

export interface NativeAddon {
  H5File: typeof H5File;
  H5Dataset: typeof H5Dataset;
  H5Group: typeof H5Group;
  /** Version of the libhdf5 in use, e.g. "1.10.8". */
  hdf5Version: string;
  napiVersion: number;
  /** sha256 fingerprint of the sources the addon was built from (CMakeLists.txt says how). */
  sourceHash: string;
  /** "bundled": HDF5 linked into the addon (scripts/build-hdf5.sh); "system": a shared libhdf5. */
  hdf5Build: 'bundled' | 'system';
  /** The built-in filters of this libhdf5, by h5py's names. */
  filters: Readonly<Record<HDF5FilterName, FilterSupport>>;
  /** Whether HDF5 loads filter plugins (HDF5_PLUGIN_PATH); off in the bundled build. */
  filterPlugins: boolean;
  /**
   * Visits every object of an untrusted file as a read would, writing JSON lines to `progressFd`
   * (binding/h5verify.h). Only for the verifier's child process (lib/backends/hdf5-verify.ts):
   * libhdf5 may crash or loop on a damaged file, and the watchdog ends the process.
   */
  verifyFileSync(path: string, opts: VerifyFileOptions): void;
}

export interface VerifyFileOptions {
  /** HDF5 paths (with everything under them) not to visit: found damaged by an earlier run. */
  skip: readonly string[];
  progressFd: number;
  /** The file's size in bytes: raw data past it is damage. */
  fileSize: number;
  maxUnwrittenChunks?: number;
  /** No progress for this long ends the process (exit code 70); 0 disables the watchdog. */
  stallMs?: number;
}

/** HDF5's built-in filters, by h5py's names. */
export type HDF5FilterName = 'gzip' | 'szip' | 'shuffle' | 'fletcher32' | 'scaleoffset' | 'nbit' | 'zstd' | 'lz4';
export interface FilterSupport {
  /** Datasets stored with the filter can be read. */
  readonly read: boolean;
  /** Datasets can be written with it. */
  readonly write: boolean;
}

/** Errors from the addon: CheckpointerErrors carrying what HDF5 or the OS said. */
export type NativeError = CheckpointerError & {
  /** HDF5's error stack, outermost call first. */
  hdf5Stack: readonly string[];
  /** The minor error message of each stack entry ("Unable to lock file", ...). */
  hdf5Minors: readonly string[];
  /** For ERR_IO: the errno name ("ENOENT") and what it was about ("file" or "directory"). */
  sysCode?: string;
  subject?: 'file' | 'directory';
  /** For a failed batch: the index of the op that failed. */
  opIndex?: number;
};

/**
 * A TypedArray that is safe to hand to an async call: views of resizable, growable or shared
 * buffers are copied (their memory may shrink or change while the HDF5 thread uses it); others
 * are returned as they are.
 */
export function stableArray<T extends TypedArray>(a: T): T {
  return isUnstableView(a) ? (a.slice() as T) : a;
}

// ----------------------------------------------------------------------------------------- loader

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

/** How to get the addon: in a checkout of the repository (lib/ holds the sources) or installed. */
function fixHint(root: string): string {
  if (fs.existsSync(path.join(root, 'lib', 'native.ts'))) {
    return 'run `npm run build:native` (it needs cmake, a C++17 compiler and libhdf5-dev, or --hdf5=bundled)';
  }
  const log = path.join(root, 'build', 'checkpointer-install.log');
  const tried = fs.existsSync(log) ? ` (what the install tried: ${log})` : '';
  return (
    'install cmake, a C++17 compiler and your system\'s HDF5 development package (apt-get install cmake g++ ' +
    `libhdf5-dev; brew install cmake hdf5; apk add cmake g++ hdf5-dev), then run \`npm rebuild checkpointer\`${tried}`
  );
}

function explain(err: unknown, root: string): string {
  const msg = (err instanceof Error ? err.message : String(err)).trim();
  const fix = fixHint(root);
  const target = `${process.platform}-${process.arch}`;
  if (/No native build was found/.test(msg)) return `no prebuilt addon fits ${target} and none was built; ${fix}`;
  const glibc = /version `GLIBC_([0-9.]+)' not found/.exec(msg);
  if (glibc) return `the prebuilt addon needs glibc ${glibc[1]} or newer (${msg}); ${fix}`;
  if (/undefined symbol: (inflate|deflate|compress|crc32|adler32)/.test(msg)) {
    return `this Node exports no zlib for the bundled HDF5 (${msg}); rebuild with CHECKPOINTER_ZLIB=static CHECKPOINTER_BUILD_FROM_SOURCE=1 npm rebuild checkpointer`;
  }
  if (/libhdf5[^\s:]*\.so[^:]*: cannot open shared object file/.test(msg)) return `libhdf5 is not installed (${msg}); ${fix}`;
  if (/version mismatch/.test(msg)) return `${msg}; ${fix}`;
  return `the addon failed to load (${msg}); ${fix}`;
}

type RawAddon = NativeAddon & { setErrorClass(cls: typeof CheckpointerError): void };

function tryLoad(): void {
  if (cached || failure) return;
  if (process.env.CHECKPOINTER_NO_NATIVE === '1') {
    failure = new CheckpointerError('the HDF5 addon is disabled by CHECKPOINTER_NO_NATIVE=1; unset it to use .hdf5/.h5 checkpoints', {
      code: 'ERR_HDF5_UNAVAILABLE',
    });
    return;
  }
  const root = packageRoot();
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => RawAddon;
    const raw = nodeGypBuild(root);
    if (typeof raw.setErrorClass !== 'function' || typeof raw.H5File?.prototype?.exec !== 'function' || !raw.filters) {
      throw new Error('the loaded addon is outdated (it lacks H5File.exec or filters)');
    }
    raw.setErrorClass(CheckpointerError);
    cached = raw;
  } catch (err) {
    failure = new CheckpointerError(`HDF5 support is unavailable: ${explain(err, root)}`, { code: 'ERR_HDF5_UNAVAILABLE', cause: err });
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

/** What `hdf5Info()` reports. */
export interface HDF5Info {
  /** Whether `.h5`/`.hdf5` checkpoints work in this process. */
  available: boolean;
  /** The libhdf5 in use ("1.14.5"), or null when unavailable. */
  version: string | null;
  /** Why HDF5 is unavailable and how to fix it (ERR_HDF5_UNAVAILABLE's message), or null. */
  reason: string | null;
  /** "bundled" (HDF5 inside the addon, as in the prebuilds), "system" (a shared libhdf5), or null. */
  build: 'bundled' | 'system' | null;
  /** Each built-in filter: whether datasets stored with it can be read and written. */
  filters: Readonly<Record<HDF5FilterName, FilterSupport>>;
  /**
   * Whether HDF5 loads filter plugins from HDF5_PLUGIN_PATH (blosc, lzf, ...). Off in the bundled
   * build: a plugin would call another HDF5 than the one inside the addon.
   */
  plugins: boolean;
}

const FILTER_NAMES: readonly HDF5FilterName[] = ['gzip', 'szip', 'shuffle', 'fletcher32', 'scaleoffset', 'nbit', 'zstd', 'lz4'];

/**
 * Whether HDF5 can be used here, before using it: loads the addon (once) and never throws.
 * `filters.gzip.write` says whether `compression: 'gzip'` works; `zstd` and `lz4` are the addon's
 * own (registered at load, no plugin needed).
 */
export function hdf5Info(): HDF5Info {
  tryLoad();
  const filters = {} as Record<HDF5FilterName, FilterSupport>;
  for (const name of FILTER_NAMES) {
    const f = cached?.filters[name];
    filters[name] = Object.freeze({ read: f?.read === true, write: f?.write === true });
  }
  return {
    available: cached !== null,
    version: cached ? cached.hdf5Version : null,
    reason: cached ? null : failure!.message,
    build: cached ? cached.hdf5Build : null,
    filters: Object.freeze(filters),
    plugins: cached ? cached.filterPlugins : false,
  };
}
