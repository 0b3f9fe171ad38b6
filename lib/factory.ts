/**
 * Building checkpointers: the extension map (`fromFile`) and McUtils' `build_canonical` dispatch.
 * Attached to `Checkpointer` as statics; kept here so the base class imports no backend.
 */
import * as path from 'node:path';
import { Checkpointer, CheckpointerClass, CheckpointerOptions } from './checkpointer';
import { CheckpointerError } from './errors';
import { DictCheckpointer } from './backends/dict';
import { HDF5Checkpointer } from './backends/hdf5';
import { JSONCheckpointer } from './backends/json';
import { NullCheckpointer } from './backends/null';
import { NumPyCheckpointer } from './backends/numpy';
import { isContainer } from './values/tree';

const extensions = new Map<string, CheckpointerClass>([
  ['.json', JSONCheckpointer],
  ['.npz', NumPyCheckpointer],
  ['.npy', NumPyCheckpointer],
  ['.hdf5', HDF5Checkpointer],
  ['.h5', HDF5Checkpointer],
]);

function normalizeExtension(ext: string): string {
  if (typeof ext !== 'string' || ext.length === 0) throw new TypeError('an extension is a non-empty string such as ".json"');
  const lower = ext.toLowerCase();
  return lower.startsWith('.') ? lower : `.${lower}`;
}

/** Extension → class, as a fresh object (changing it changes nothing; use registerExtension). */
export function extensionMap(): Record<string, CheckpointerClass> {
  return Object.fromEntries(extensions);
}

export function registerExtension(ext: string, cls: CheckpointerClass): void {
  if (typeof cls !== 'function' || !(cls.prototype instanceof Checkpointer)) {
    throw new TypeError('registerExtension: cls must be a subclass of Checkpointer');
  }
  extensions.set(normalizeExtension(ext), cls);
}

/** A checkpointer for `file`, its class chosen by the extension (case-insensitive). */
export function fromFile(file: string, opts: CheckpointerOptions & Record<string, unknown> = {}): Checkpointer {
  if (typeof file !== 'string' || file.length === 0) throw new TypeError('fromFile: file must be a non-empty path string');
  const ext = path.extname(file).toLowerCase();
  const cls = extensions.get(ext);
  if (!cls) {
    throw new CheckpointerError(
      `no checkpointer for extension ${JSON.stringify(ext || '(none)')} of ${file}; known: ${[...extensions.keys()].join(', ')}`,
      { code: 'ERR_UNKNOWN_EXTENSION', file },
    );
  }
  return new cls(file, opts);
}

function keyFilters(keys: unknown): CheckpointerOptions {
  if (keys == null) return {};
  if (Array.isArray(keys)) return { allowedKeys: keys as string[] };
  if (typeof keys === 'object') {
    const k = keys as { allowed_keys?: string[] | null; omitted_keys?: string[] | null; allowedKeys?: string[]; omittedKeys?: string[] };
    return { allowedKeys: k.allowed_keys ?? k.allowedKeys ?? null, omittedKeys: k.omitted_keys ?? k.omittedKeys ?? null };
  }
  throw new TypeError('buildCanonical: keys is a list of allowed keys or {allowed_keys, omitted_keys}');
}

/**
 * McUtils' build_canonical: null/undefined → NullCheckpointer; a path → fromFile; a Checkpointer →
 * itself; `{file, keys?, opts?}` → fromFile with key filters; any other plain object or Map →
 * DictCheckpointer wrapping it.
 */
export function buildCanonical(spec: unknown): Checkpointer {
  if (spec == null) return new NullCheckpointer();
  if (spec instanceof Checkpointer) return spec;
  if (typeof spec === 'string') return fromFile(spec);
  if (isContainer(spec)) {
    const file = spec instanceof Map ? undefined : (spec as { file?: unknown }).file;
    if (typeof file === 'string') {
      const s = spec as { keys?: unknown; opts?: Record<string, unknown> };
      return fromFile(file, { ...(s.opts ?? {}), ...keyFilters(s.keys) });
    }
    return new DictCheckpointer(spec);
  }
  throw new TypeError(`buildCanonical: cannot make a checkpointer from ${Object.prototype.toString.call(spec)}`);
}

Object.assign(Checkpointer, { fromFile, buildCanonical, extensionMap, registerExtension });
