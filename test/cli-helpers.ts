/**
 * Runs the real `checkpointer` bin (package.json "bin") in a child process, piped or under a
 * pseudo-terminal (Python's pty module: stdin and stderr a terminal, stdout a file).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PYTHON } from './helpers/python';

const root = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
export const BIN = path.join(root, pkg.bin.checkpointer!);

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: opts.cwd, env: { ...process.env, ...opts.env }, input: opts.input ?? '', encoding: 'utf8', maxBuffer: 64 << 20, timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs the bin with stdin and stderr on a pseudo-terminal and stdout to a file; `answer` is typed
 * at the terminal once the output so far contains `prompt`. Returns what the terminal showed.
 */
export function cliUnderPty(args: readonly string[], opts: { cwd?: string; answer?: string; prompt?: string } = {}): Run & { terminal: string } {
  const out = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'cli-pty-')), 'stdout');
  const script = `
import os, pty, sys, json, select, time
argv, out_path, answer, prompt = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
pid, fd = pty.fork()
if pid == 0:
    o = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(o, 1)
    os.execv(argv[0], argv)
seen = b''
answered = answer == ''
deadline = time.time() + 120
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        seen += d
    if not answered and prompt.encode() in seen:
        os.write(fd, answer.encode() + b'\\n')
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(json.dumps({'status': os.waitstatus_to_exitcode(status), 'terminal': seen.decode('utf8', 'replace')}))
`;
  const r = spawnSync(PYTHON, ['-c', script, JSON.stringify([process.execPath, BIN, ...args]), out, opts.answer ?? '', opts.prompt ?? ''], {
    cwd: opts.cwd, encoding: 'utf8', timeout: 150_000,
  });
  if (r.status !== 0) throw new Error(`pty runner failed: ${r.stderr}`);
  const { status, terminal } = JSON.parse(r.stdout) as { status: number; terminal: string };
  const stdout = fs.readFileSync(out, 'utf8');
  fs.rmSync(path.dirname(out), { recursive: true, force: true });
  return { status, stdout, stderr: terminal, terminal };
}

/**
 * Files in `dir` other than `base` whose names hold it: the temporary files beside an output
 * (the convert's own `.<base>.<pid>.<hex>.convert.<ext>`, and the shadows, spools and locks the
 * package's writers derive from that name).
 */
export function leftovers(dir: string, base: string): string[] {
  return fs.readdirSync(dir).filter((f) => f !== base && f.includes(base));
}
