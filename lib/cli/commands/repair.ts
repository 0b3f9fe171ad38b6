/**
 * `checkpointer repair FILE`: an HDF5 file whose writer died with it open keeps HDF5's status
 * flags set, and HDF5 refuses to open it; `h5clear -s` clears them. This does the same through
 * the package's `recover` open mode — in a shadow copy that replaces the file atomically, so a
 * crash during the repair leaves the file as it was — after saying what it will do and asking.
 */
import * as readline from 'node:readline';
import * as path from 'node:path';
import { HDF5Checkpointer } from '../../backends/hdf5';
import { CheckpointerError } from '../../errors';
import { extensionMap } from '../../factory';
import { CliError, EXIT } from '../errors';
import { openInput } from '../open';

export const REPAIR_HELP = `Usage: checkpointer repair FILE [--yes] [--dry-run]

For an HDF5 file whose writer died with it open (HDF5 then refuses to open it:
"its writer died without closing it"): clears HDF5's status flags, as h5clear -s
does, in a copy of the file that replaces it atomically. The data is not changed.
It says what it will do first and asks for confirmation on a terminal.

A file that opens is left alone (exit 0). Other damage is not what repair fixes:
it is reported (exit 3). .npz/.npy/.json files are written atomically and never
need this (exit 6).

Options:
  --yes       do it without asking (needed when stdin or stderr is not a terminal:
              otherwise nothing is changed and the exit code is 7)
  --dry-run   say what would be done, change nothing
  -h, --help  this help`;

function writerDied(err: unknown): boolean {
  return err instanceof CheckpointerError && err.code === 'ERR_CHECKPOINT_CORRUPT' && /died without closing/.test(err.message);
}

async function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.question(question, resolve);
      rl.once('close', () => resolve(''));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export async function runRepair(file: string, opts: { yes: boolean; dryRun: boolean }, write: (s: string) => void): Promise<number> {
  const Cls = extensionMap()[path.extname(file).toLowerCase()];
  const chk = openInput(file);
  if (!(chk instanceof HDF5Checkpointer) || (Cls && !(Cls === HDF5Checkpointer || Cls.prototype instanceof HDF5Checkpointer))) {
    throw new CliError(`repair is for HDF5 files whose writer died; ${chk.constructor.name} files are written atomically and have nothing to clear`, 'ERR_UNSUPPORTED_VALUE', EXIT.UNSUPPORTED, file);
  }
  let keys: string[];
  try {
    keys = chk.withSync((c) => c.keysSync());
    write(`${file}: nothing to repair (it opens, ${keys.length} key${keys.length === 1 ? '' : 's'}); checkpointer verify ${file} reads every key\n`);
    return EXIT.OK;
  } catch (err) {
    if (!writerDied(err)) {
      const message = err instanceof Error ? err.message : String(err);
      throw new CliError(`${message} — repair only clears the status flags a writer that died left set; this is other damage`, err instanceof CheckpointerError ? err.code : 'ERR_CHECKPOINT_CORRUPT', EXIT.CORRUPT, file);
    }
  }
  write(`${file}: its writer died with the file open, so HDF5's status flags are still set and HDF5 refuses to open it.\n`
    + 'repair will clear the flags (what h5clear -s does) in a copy of the file, then rename the copy over it (atomic: an interruption leaves the file as it is now). '
    + 'The keys and data are not changed.\n');
  if (opts.dryRun) {
    write('dry run: nothing changed\n');
    return EXIT.OK;
  }
  if (!opts.yes) {
    if (!(process.stdin.isTTY && process.stderr.isTTY)) {
      throw new CliError('not confirmed: no terminal to ask on; run again with --yes to repair', 'ERR_NOT_CONFIRMED', EXIT.NOT_CONFIRMED, file);
    }
    if (!(await confirm(`Repair ${file}? [y/N] `))) throw new CliError('not confirmed: nothing changed', 'ERR_NOT_CONFIRMED', EXIT.NOT_CONFIRMED, file);
  }
  // The recover session clears the flags in its shadow; its commit (the close) replaces the file.
  new HDF5Checkpointer(file, { recover: true }).withSync((c) => c.keysSync());
  keys = new HDF5Checkpointer(file).withSync((c) => c.keysSync());
  write(`${file}: repaired; it opens (${keys.length} key${keys.length === 1 ? '' : 's'}). checkpointer verify ${file} reads every key\n`);
  return EXIT.OK;
}
