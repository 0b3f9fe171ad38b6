/**
 * `checkpointer <command>`: look inside, convert, verify, compare and repair checkpoints from the
 * shell. Arguments are parsed with Node's util.parseArgs (strict: an unknown option is a usage
 * error); every failure is one line on stderr and a documented exit code (./errors, docs/cli.md).
 */
import { parseArgs, ParseArgsConfig } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, errorLine, EXIT, exitCodeOf, usage } from './errors';
import { withHint } from './open';
import { LS_HELP, runLs } from './commands/ls';
import { SHOW_HELP, runShow } from './commands/show';
import { CONVERT_HELP, runConvert } from './commands/convert';
import { VERIFY_HELP, runVerify } from './commands/verify';
import { DIFF_HELP, runDiff } from './commands/diff';
import { REPAIR_HELP, runRepair } from './commands/repair';

export const MAIN_HELP = `Usage: checkpointer <command> [options]

Inspect, convert, verify and compare checkpoints (.h5/.hdf5, .npz, .npy, .json),
whichever program wrote them (this package, McUtils, h5py, numpy).

Commands:
  ls FILE [KEY]            the tree of keys: kind, dtype, shape, size, chunks, filters
  show FILE [KEY]          a value as numpy prints it (--slice 0:10,:,::2)
  convert IN OUT           any format to any format, arrays streamed (--compression)
  verify FILE|DIR          read every key; exit 1 naming the first problem
  diff A B                 differences of keys, dtypes, shapes, values (--rtol --atol)
  repair FILE              clear the status flags of an HDF5 file whose writer died

Run 'checkpointer <command> --help' for a command's options.

Exit codes: 0 ok, 1 problems/differences found, 2 usage error, 3 damaged or unreadable
checkpoint, 4 file or key not found, 5 output cannot be written, 6 unsupported value,
dtype, format or codec, 7 repair not confirmed, 70 internal error, 130 interrupted.
Errors are one line: checkpointer: CODE: FILE: message`;

interface Command {
  help: string;
  /** Positional arguments: how many at least and at most. */
  positionals: [number, number];
  options: NonNullable<ParseArgsConfig['options']>;
  run(args: string[], values: Record<string, string | boolean | undefined>, io: IO): Promise<number> | number;
}

export interface IO {
  out: (s: string) => void;
  err: (s: string) => void;
}

const COMMANDS: Record<string, Command> = {
  ls: {
    help: LS_HELP, positionals: [1, 2],
    options: { json: { type: 'boolean' } },
    run: ([file, key], v, io) => runLs(file!, key, v.json === true, io.out),
  },
  show: {
    help: SHOW_HELP, positionals: [1, 2],
    options: { slice: { type: 'string' } },
    run: ([file, key], v, io) => runShow(file!, key, v.slice as string | undefined, io.out),
  },
  convert: {
    help: CONVERT_HELP, positionals: [2, 2],
    options: { compression: { type: 'string' }, force: { type: 'boolean' }, progress: { type: 'boolean' }, 'no-progress': { type: 'boolean' } },
    run: ([input, output], v) => runConvert(input!, output!, {
      compression: v.compression as string | undefined,
      force: v.force === true,
      progress: v['no-progress'] === true ? false : v.progress === true ? true : undefined,
    }),
  },
  verify: {
    help: VERIFY_HELP, positionals: [1, 1],
    options: { quiet: { type: 'boolean', short: 'q' } },
    run: ([target], v, io) => runVerify(target!, v.quiet === true, io.out, io.err),
  },
  diff: {
    help: DIFF_HELP, positionals: [2, 2],
    options: { rtol: { type: 'string' }, atol: { type: 'string' }, json: { type: 'boolean' } },
    run: ([a, b], v, io) => runDiff(a!, b!, { rtol: v.rtol as string | undefined, atol: v.atol as string | undefined, json: v.json === true }, io.out),
  },
  repair: {
    help: REPAIR_HELP, positionals: [1, 1],
    options: { yes: { type: 'boolean', short: 'y' }, 'dry-run': { type: 'boolean' } },
    run: ([file], v, io) => runRepair(file!, { yes: v.yes === true, dryRun: v['dry-run'] === true }, io.out),
  },
};

function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Runs one command line; resolves to the exit code (it never throws). */
export async function main(argv: readonly string[], io: IO = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) }): Promise<number> {
  const [name, ...rest] = argv;
  let file: string | undefined;
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      const topic = name === 'help' ? rest[0] : undefined;
      if (topic !== undefined && !COMMANDS[topic]) throw usage(`unknown command ${JSON.stringify(topic)}; see checkpointer --help`);
      io.out(`${topic ? COMMANDS[topic]!.help : MAIN_HELP}\n`);
      return name === undefined ? EXIT.USAGE : EXIT.OK;
    }
    if (name === '--version' || name === '-V') {
      io.out(`${version()}\n`);
      return EXIT.OK;
    }
    const cmd = COMMANDS[name];
    if (!cmd) throw usage(`unknown command ${JSON.stringify(name)}; see checkpointer --help`);
    // A string option's value that starts with '-' (`--slice -1`, `--slice -3:`) is its value, not an option.
    const args: string[] = [];
    for (let i = 0; i < rest.length; i++) {
      const opt = /^--([a-z-]+)$/.exec(rest[i]!)?.[1];
      if (opt && cmd.options[opt]?.type === 'string' && /^-[\d.:]/.test(rest[i + 1] ?? '')) args.push(`${rest[i]}=${rest[++i]}`);
      else args.push(rest[i]!);
    }
    let parsed;
    try {
      parsed = parseArgs({ args, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    } catch (err) {
      throw usage(`${name}: ${(err as Error).message.replace(/\. To specify a positional argument.*$/, '')}`);
    }
    if (parsed.values.help) {
      io.out(`${cmd.help}\n`);
      return EXIT.OK;
    }
    const [min, max] = cmd.positionals;
    if (parsed.positionals.length < min || parsed.positionals.length > max) {
      throw usage(`${name}: expected ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, got ${parsed.positionals.length}; see checkpointer ${name} --help`);
    }
    file = parsed.positionals[0];
    return await cmd.run(parsed.positionals, parsed.values as Record<string, string | boolean | undefined>, io);
  } catch (err) {
    if (file !== undefined) withHint(err, file);
    io.err(`${errorLine(err, err instanceof CliError ? err.file : file)}\n`);
    if (process.env.CHECKPOINTER_DEBUG === '1' && err instanceof Error) io.err(`${err.stack}\n`);
    return exitCodeOf(err);
  }
}
