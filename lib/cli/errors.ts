/**
 * How the command-line tool fails: one line on stderr (`checkpointer: CODE: file: message`) and an
 * exit code per failure class, so scripts can tell "the checkpoint differs" from "the checkpoint
 * is damaged" from "you typed it wrong". The table is documented in docs/cli.md.
 */
import { CheckpointerError } from '../errors';

export const EXIT = {
  /** Everything as asked; verify: intact; diff: no differences. */
  OK: 0,
  /** verify found a problem, diff found a difference. */
  FOUND: 1,
  /** Bad command line: unknown command or option, a missing argument, a malformed --slice. */
  USAGE: 2,
  /** The checkpoint cannot be read: damaged, or not the format its name says (ERR_CHECKPOINT_CORRUPT, ERR_HDF5). */
  CORRUPT: 3,
  /** The file or key is not there (ENOENT, ERR_KEY). */
  NOT_FOUND: 4,
  /** The output cannot be written: exists, not writable, locked, disk full (ERR_EXISTS, ERR_NOT_WRITABLE, ERR_LOCKED, ERR_CONFLICT, ERR_NO_SPACE, ERR_IO). */
  CANNOT_WRITE: 5,
  /** A value, dtype, codec or format this build cannot handle (ERR_UNSUPPORTED_*, ERR_UNKNOWN_EXTENSION, ERR_HDF5_UNAVAILABLE, ERR_TOO_LARGE). */
  UNSUPPORTED: 6,
  /** repair was not confirmed (no TTY to ask on and no --yes, or the answer was no): nothing changed. */
  NOT_CONFIRMED: 7,
  /** A bug in the tool: the message says what failed (CHECKPOINTER_DEBUG=1 prints the stack). */
  INTERNAL: 70,
  /** Interrupted (SIGINT): any partial output was removed. */
  INTERRUPTED: 130,
} as const;

/** A failure of the command line itself (exit 2) or one with a chosen exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: string = 'ERR_USAGE',
    readonly exitCode: number = EXIT.USAGE,
    readonly file?: string,
  ) {
    super(message);
  }
}

export function usage(message: string): CliError {
  return new CliError(message, 'ERR_USAGE', EXIT.USAGE);
}

/** The exit code for an error thrown by the package (or the tool). */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (err instanceof CheckpointerError) {
    switch (err.code) {
      case 'ERR_CHECKPOINT_CORRUPT':
      case 'ERR_HDF5':
        return EXIT.CORRUPT;
      case 'ERR_KEY':
        return EXIT.NOT_FOUND;
      case 'ERR_EXISTS':
      case 'ERR_NOT_WRITABLE':
      case 'ERR_LOCKED':
      case 'ERR_CONFLICT':
      case 'ERR_NO_SPACE':
      case 'ERR_BUSY':
      case 'ERR_CLOSED':
        return EXIT.CANNOT_WRITE;
      case 'ERR_IO':
        return /ENOENT|does not exist/.test(err.message) ? EXIT.NOT_FOUND : EXIT.CANNOT_WRITE;
      default:
        return EXIT.UNSUPPORTED;
    }
  }
  const sys = err as NodeJS.ErrnoException;
  if (sys?.code === 'ENOENT' || sys?.code === 'ENOTDIR') return EXIT.NOT_FOUND;
  if (typeof sys?.code === 'string' && /^E[A-Z]+$/.test(sys.code)) return EXIT.CANNOT_WRITE;
  if (err instanceof TypeError || err instanceof RangeError) return EXIT.UNSUPPORTED;
  return EXIT.INTERNAL;
}

/** The stable code shown in the error line. */
export function codeOf(err: unknown): string {
  if (err instanceof CliError || err instanceof CheckpointerError) return err.code;
  const sys = err as NodeJS.ErrnoException;
  if (typeof sys?.code === 'string') return sys.code;
  if (err instanceof TypeError || err instanceof RangeError) return 'ERR_UNSUPPORTED_VALUE';
  return 'ERR_INTERNAL';
}

/** `checkpointer: CODE: file: message`, on one line. */
export function errorLine(err: unknown, file?: string): string {
  const where = (err as { file?: string })?.file ?? file;
  let message = err instanceof Error ? err.message : String(err);
  const sys = err as NodeJS.ErrnoException;
  if (sys?.code === 'ENOENT' && sys.path) message = 'no such file or directory';
  message = message.replace(/\s*\n\s*/g, ' ').trim();
  // The package's messages often start with the file: it is in the line once already.
  if (where && message.startsWith(`${where}: `)) message = message.slice(where.length + 2);
  else if (where && message.startsWith(`${where} (`)) message = message.slice(where.length + 1);
  return `checkpointer: ${codeOf(err)}: ${where ? `${where}: ` : ''}${message}`;
}
