/**
 * Atomic file replacement: write a temp file in the target's directory, fsync it, rename it over
 * the target, fsync the directory. A crash or an exception at any point leaves either the old file
 * or the new one, never a mix. A target without write permission is not replaced.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CheckpointerError, fromSystemError } from '../errors';

export interface AtomicWriteOptions {
  /** fsync the data and the directory before returning (default true). */
  durable?: boolean;
  /**
   * Start the temp file as a copy of this file (cloneFile: a reflink where the filesystem has
   * one), opened for writing in place, instead of empty: `write` changes or extends it.
   */
  startFrom?: string;
}

const CLONE_FLAGS = fs.constants.COPYFILE_EXCL | fs.constants.COPYFILE_FICLONE;

/**
 * Copies `from` to `to` (which must not exist) in the kernel, its mode included: a reflink
 * (FICLONE) where the filesystem has them (btrfs, XFS, APFS: no data copied, O(1)), else
 * copy_file_range/sendfile (ext4, tmpfs: the bytes are copied, without passing through JS).
 */
export function cloneFileSync(from: string, to: string): void {
  fs.copyFileSync(from, to, CLONE_FLAGS);
}

export function cloneFile(from: string, to: string): Promise<void> {
  return fs.promises.copyFile(from, to, CLONE_FLAGS);
}

/**
 * A fresh temp name beside `file`: `.<base>.<pid>.<hex>.tmp`. The pid lets the next writer (holding
 * the lock, see ./lock) tell a killed writer's leftovers from a live one's work in progress.
 */
export function tempNameFor(file: string): string {
  const dir = path.dirname(file);
  return path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Whether `name` (a file name in `file`'s directory) is one of `tempNameFor(file)`'s names. */
export function isTempNameFor(file: string, name: string): boolean {
  const prefix = `.${path.basename(file)}.`;
  return name.startsWith(prefix) && name.endsWith('.tmp') && /^\d+\.[0-9a-f]+$/.test(name.slice(prefix.length, -4));
}

/** Refuses to replace a file that has no write bits (even as root, where access() says yes). */
function existingMode(file: string): number | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(err, file, 'write');
  }
  if ((st.mode & 0o222) === 0) {
    throw new CheckpointerError(`cannot write ${file}: the file is read-only`, { code: 'ERR_NOT_WRITABLE', file });
  }
  return st.mode & 0o7777;
}

export function fsyncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Replaces `file` with what `write(fd)` writes. */
export function writeFileAtomicSync(file: string, write: (fd: number) => void, opts: AtomicWriteOptions = {}): void {
  const durable = opts.durable ?? true;
  const mode = existingMode(file);
  const tmp = tempNameFor(file);
  let fd: number;
  try {
    if (opts.startFrom !== undefined) {
      cloneFileSync(opts.startFrom, tmp);
      fd = fs.openSync(tmp, 'r+');
    } else {
      fd = fs.openSync(tmp, 'wx', mode ?? 0o666);
    }
  } catch (err) {
    if (opts.startFrom !== undefined && (err as NodeJS.ErrnoException).code !== 'EEXIST') try { fs.unlinkSync(tmp); } catch { /* not created */ }
    throw fromSystemError(err, file, 'write');
  }
  try {
    try {
      write(fd);
      if (durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (mode !== null) fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
  } catch (err) {
    try { fs.unlinkSync(tmp); } catch { /* already gone */ }
    throw fromSystemError(err, file, 'write');
  }
  if (durable) fsyncDirSync(path.dirname(file));
}

/** Async twin of writeFileAtomicSync: the I/O runs on libuv's pool, off the event loop. */
export async function writeFileAtomic(
  file: string,
  write: (fh: fs.promises.FileHandle) => Promise<void>,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const durable = opts.durable ?? true;
  const mode = existingMode(file);
  const tmp = tempNameFor(file);
  let fh: fs.promises.FileHandle;
  try {
    if (opts.startFrom !== undefined) {
      await cloneFile(opts.startFrom, tmp);
      fh = await fs.promises.open(tmp, 'r+');
    } else {
      fh = await fs.promises.open(tmp, 'wx', mode ?? 0o666);
    }
  } catch (err) {
    if (opts.startFrom !== undefined && (err as NodeJS.ErrnoException).code !== 'EEXIST') await fs.promises.unlink(tmp).catch(() => undefined);
    throw fromSystemError(err, file, 'write');
  }
  try {
    try {
      await write(fh);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    if (mode !== null) await fs.promises.chmod(tmp, mode);
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.unlink(tmp).catch(() => undefined);
    throw fromSystemError(err, file, 'write');
  }
  if (durable) {
    const dir = await fs.promises.open(path.dirname(file), 'r').catch(() => null);
    if (dir) {
      await dir.sync().catch(() => undefined);
      await dir.close();
    }
  }
}

/**
 * What identifies a file's current version: device, inode, size, mtime and ctime (ns), or
 * 'absent'. A writer that replaced the file (rename) or changed it in place changes it.
 */
export function fileStampSync(file: string): string {
  try {
    return stampOf(fs.statSync(file, { bigint: true }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw fromSystemError(err, file, 'read');
  }
}

export function stampOf(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** fsync of a file by its path (its data reaches the disk before a rename publishes it). */
export async function fsyncPath(file: string): Promise<void> {
  const fh = await fs.promises.open(file, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function fsyncPathSync(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Async twin of fsyncDirSync: some filesystems refuse fsync on a directory; the rename is still atomic there. */
export async function fsyncDir(dir: string): Promise<void> {
  await fsyncPath(dir).catch(() => undefined);
}

/** Reads a whole file, or returns null when it does not exist. Errors become CheckpointerErrors. */
export function readFileIfExistsSync(file: string): Buffer | null {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(err, file, 'read');
  }
}

export async function readFileIfExists(file: string): Promise<Buffer | null> {
  try {
    return await fs.promises.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fromSystemError(err, file, 'read');
  }
}
