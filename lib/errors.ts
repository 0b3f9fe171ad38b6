/**
 * Typed errors. Every failure the library reports on purpose is a `CheckpointerError` with a
 * stable `code`, so callers can branch on `err.code` rather than on message text.
 */

export type CheckpointerErrorCode =
  /** The file exists but cannot be parsed as its format (truncated, wrong format, bad header). */
  | 'ERR_CHECKPOINT_CORRUPT'
  /** A key is outside `allowedKeys`, inside `omittedKeys`, or not present. */
  | 'ERR_KEY'
  /** No backend is registered for the file's extension. */
  | 'ERR_UNKNOWN_EXTENSION'
  /** The value cannot be represented by this backend (e.g. a nested dict inside a `.npy`). */
  | 'ERR_UNSUPPORTED_VALUE'
  /** A stored type this package does not read (e.g. float16, an unknown compound). */
  | 'ERR_UNSUPPORTED_DTYPE'
  /** A synchronous call was made while an asynchronous operation is in flight on the same checkpointer. */
  | 'ERR_BUSY'
  /** The file cannot be written: it has no write permission, or its directory is missing or read-only. */
  | 'ERR_NOT_WRITABLE'
  /** What is to be created already exists, and replacing it was not asked for (a CheckpointManager step). */
  | 'ERR_EXISTS'
  /** Another writer (another process, or another Checkpointer in this one) holds the file's write lock. */
  | 'ERR_LOCKED'
  /** Another writer changed the file after this session read it: the write is refused so that no update is lost. */
  | 'ERR_CONFLICT'
  /** The disk is full, or a quota or file-size limit was reached (ENOSPC, EDQUOT, EFBIG); the previous value is intact. */
  | 'ERR_NO_SPACE'
  /** Operating-system I/O failure not covered above (the `cause` has the system error). */
  | 'ERR_IO'
  /** The HDF5 addon could not be loaded (not built, libhdf5 missing or mismatched). */
  | 'ERR_HDF5_UNAVAILABLE'
  /** libhdf5 reported an error; `hdf5Stack` holds its error stack messages. */
  | 'ERR_HDF5'
  /** The operation needs an open handle that has been closed. */
  | 'ERR_CLOSED'
  /** A value is larger than one array of this Node can hold (read it in slices through a dataset handle). */
  | 'ERR_TOO_LARGE';

export interface CheckpointerErrorOptions {
  code: CheckpointerErrorCode;
  file?: string | undefined;
  cause?: unknown;
}

export class CheckpointerError extends Error {
  readonly code: CheckpointerErrorCode;
  /** The checkpoint file involved, when there is one. */
  readonly file: string | undefined;

  constructor(message: string, options: CheckpointerErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.file = options.file;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** A key that is missing, or that the checkpointer's key filters refuse (McUtils raises KeyError). */
export class CheckpointerKeyError extends CheckpointerError {
  /** The key as the caller gave it. */
  readonly key: string | readonly string[];

  constructor(message: string, key: string | readonly string[], file?: string) {
    super(message, { code: 'ERR_KEY', file });
    this.key = key;
  }

  /** The error for a key path that is not stored; a one-name path is shown as that name. */
  static missing(path: readonly string[], file?: string, detail = ''): CheckpointerKeyError {
    const key = path.length === 1 ? path[0]! : path;
    return new CheckpointerKeyError(`key ${JSON.stringify(key)} is not in the checkpoint${detail}`, key, file);
  }
}

/** What each no-space errno means, in words. */
export const NO_SPACE: Record<string, string> = {
  ENOSPC: 'no space left on the device (ENOSPC)',
  EDQUOT: 'the disk quota is exceeded (EDQUOT)',
  EFBIG: 'the file would pass the file-size limit (EFBIG)',
};

/**
 * Maps a Node system error (ENOENT, EACCES, ...) met while touching `file` to a CheckpointerError.
 * Errors that already are CheckpointerErrors pass through unchanged.
 */
export function fromSystemError(err: unknown, file: string, action: string): CheckpointerError {
  if (err instanceof CheckpointerError) return err;
  const sys = err as NodeJS.ErrnoException;
  switch (sys?.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new CheckpointerError(`cannot ${action} ${file}: its directory does not exist`, {
        code: 'ERR_NOT_WRITABLE', file, cause: err,
      });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new CheckpointerError(`cannot ${action} ${file}: permission denied`, {
        code: 'ERR_NOT_WRITABLE', file, cause: err,
      });
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return new CheckpointerError(`cannot ${action} ${file}: ${NO_SPACE[sys.code]}`, { code: 'ERR_NO_SPACE', file, cause: err });
    default:
      return new CheckpointerError(`cannot ${action} ${file}: ${sys?.message ?? String(err)}`, {
        code: 'ERR_IO', file, cause: err,
      });
  }
}
