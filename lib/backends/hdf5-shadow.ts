/**
 * Crash-safe HDF5 commits: a session's writes go into a shadow file beside the checkpoint (a copy
 * of it, or a new file), which is renamed over the checkpoint when the session commits. HDF5 writes
 * metadata in place and reuses freed space, so a process killed inside a write can leave a file
 * that no longer opens, or keys whose old shape points at new data; the checkpoint itself is
 * never written here, so a kill at any moment leaves it as the last commit left it, and a file
 * that never completed its first commit does not exist.
 *
 * The steps of a commit: H5Fclose writes everything HDF5 holds, fsync the shadow (durable), rename
 * it over the checkpoint (atomic), fsync the directory (durable). A shadow left by a killed writer
 * has the temp-file name of ../io/atomic (`.<name>.<pid>.<hex>.tmp`), so the next writer removes it.
 *
 * The copy is made by ../io/atomic's cloneFile (copy_file_range, or FICLONE: a reflink, free, where
 * the filesystem has them; the .npz append commit copies the same way);
 * it is what a session that changes an existing file pays: one copy of the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromSystemError } from '../errors';
import { cloneFile, cloneFileSync, fsyncDir, fsyncDirSync, fsyncPath, fsyncPathSync, tempNameFor } from '../io/atomic';
import { fsCall, H5Gen } from './hdf5-calls';
import { trustCopy } from './hdf5-verify';

/** The shadow of `target` for a new session: a copy of it when it exists (and is not empty), else nothing yet. */
export function* beginShadow(target: string): H5Gen<{ shadow: string; copied: boolean }> {
  const shadow = tempNameFor(target);
  let size: number;
  try {
    size = fs.statSync(target).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(err, target, 'read');
    return { shadow, copied: false };
  }
  // An empty file is no checkpoint (a writer without shadows died before writing anything): start afresh.
  if (size === 0) return { shadow, copied: false };
  try {
    yield* fsCall(() => cloneFileSync(target, shadow), () => cloneFile(target, shadow));
  } catch (err) {
    discardShadow(shadow);
    throw fromSystemError(err, target, 'copy for writing');
  }
  // The copy is what its original is known to be: not verified again in a child (./hdf5-verify).
  trustCopy(target, shadow);
  return { shadow, copied: true };
}

/** Makes the closed shadow the checkpoint: fsync, rename over `target`, fsync the directory. */
export function* commitShadow(shadow: string, target: string, durable: boolean): H5Gen<void> {
  try {
    if (durable) yield* fsCall(() => fsyncPathSync(shadow), () => fsyncPath(shadow));
    yield* fsCall(() => fs.renameSync(shadow, target), () => fs.promises.rename(shadow, target));
  } catch (err) {
    discardShadow(shadow);
    throw fromSystemError(err, target, 'commit');
  }
  if (durable) yield* fsCall(() => fsyncDirSync(path.dirname(target)), () => fsyncDir(path.dirname(target)));
}

/** Removes a shadow that will not be committed (best effort: the next writer removes what is left). */
export function discardShadow(shadow: string): void {
  try {
    fs.unlinkSync(shadow);
  } catch { /* already gone */ }
}
