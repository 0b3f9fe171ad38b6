#!/usr/bin/env node
/**
 * The `checkpointer` command (package.json "bin"): runs ./main and exits with its code
 * (docs/cli.md lists them). Built to dist/cli/bin.js, so it ships with the rest of dist/.
 */
import { main } from './main';

// Output to a pipe that closes early (`checkpointer ls big.h5 | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    // exitCode rather than exit(): stdout and stderr drain first.
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`checkpointer: ERR_INTERNAL: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 70;
  },
);
