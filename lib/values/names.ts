/**
 * Which names a format can hold: the one rule per format that every backend checks — key paths and
 * every dict key inside a value — before anything is written. A refused name is a TypeError.
 *
 * | name                                   | HDF5 | .npz | JSON, dict |
 * |----------------------------------------|------|------|------------|
 * | `''` (empty)                           | no   | no   | yes        |
 * | containing NUL                         | no   | no   | yes        |
 * | containing `/`, or `.` alone           | no   | yes  | yes        |
 * | containing `::>|<::` (the npz joiner)  | yes  | no   | yes        |
 * | `_list_numitems`, `_list_item_<N>`     | no   | no   | yes        |
 * | starting with `.checkpointer-`         | no   | yes  | yes        |
 * | a lone UTF-16 surrogate (not UTF-8)    | no   | no   | yes        |
 *
 * Why: HDF5 links are NUL-terminated UTF-8 and `/` separates them (`.` is the group itself);
 * zip member names are UTF-8 and Python's zipfile cuts them at NUL; McUtils' HDF5 and npz layouts
 * store a list as a dict of `_list_item_N` plus `_list_numitems`, so a dict with such keys would
 * read back as a list or not at all; `.checkpointer-` names are this package's temporary links
 * (a `set` writes the new value under one before it takes the key's place). JSON text and an
 * in-memory dict hold any string. A top-level key is never empty (`keyPath`).
 */
import { describeKey } from './model';

export type NameFormat = 'hdf5' | 'npz' | 'json' | 'dict';

/** The npz layout's joiner of nested dict keys (McUtils' NumPySerializer). */
export const NPZ_KEY_SEP = '::>|<::';
/** Names of this package's temporary HDF5 links; never a user's key, hidden from listings. */
export const RESERVED_PREFIX = '.checkpointer-';

const LIST_NAME = /^_list_(numitems|item_\d+)$/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why `name` cannot be stored in `format`, or null when it can. */
export function nameProblem(name: string, format: NameFormat): string | null {
  if (format === 'json' || format === 'dict') return null;
  if (name === '') return 'it is empty';
  if (name.includes('\0')) return 'it contains NUL';
  if (LONE_SURROGATE.test(name)) return 'it contains a lone UTF-16 surrogate, which is not UTF-8';
  if (LIST_NAME.test(name)) return 'McUtils reserves it for lists (a dict holding it reads back as a list)';
  if (format === 'hdf5') {
    if (name.includes('/')) return "it contains '/', which separates HDF5 path names";
    if (name === '.') return "'.' names the group itself in HDF5";
    if (name.startsWith(RESERVED_PREFIX)) return `names starting with ${JSON.stringify(RESERVED_PREFIX)} are this package's temporary links`;
  } else if (name.includes(NPZ_KEY_SEP)) {
    return `it contains ${JSON.stringify(NPZ_KEY_SEP)}, which .npz files use to join nested dict keys`;
  }
  return null;
}

const FORMAT_NAME: Record<NameFormat, string> = { hdf5: 'an HDF5', npz: 'an .npz', json: 'a JSON', dict: 'a dict' };

/** Throws TypeError when `name` (at `where`) cannot be stored in `format`. */
export function checkName(name: string, format: NameFormat, where: string): void {
  const why = nameProblem(name, format);
  if (why !== null) throw new TypeError(`${where}: the name ${describeKey(name)} cannot be stored in ${FORMAT_NAME[format]} checkpoint: ${why}`);
}

/** Checks every name of a key path. */
export function checkKeyNames(path: readonly string[], format: NameFormat): void {
  for (const name of path) checkName(name, format, `key ${describeKey(path.length === 1 ? path[0] : path)}`);
}
