/**
 * Runs a command where the system's HDF5, szip (libsz/libaec) and zlib shared libraries cannot
 * load: in a private mount namespace (`unshare -m`) with /dev/null bind-mounted over every such
 * file, so the dynamic loader still finds them (through ld.so.cache or its default paths) but reads
 * an empty file ("file too short"). Nothing changes outside that namespace. Needs root and
 * util-linux's `unshare`; `namespaceUnavailable()` says why when it cannot be done here.
 */
import { execFileSync, spawnSync, SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** File names (not paths) of the libraries to hide: every libhdf5*, libsz, libaec, libz. */
const HIDDEN_NAME = /^(libhdf5[^/]*|libsz|libaec|libz)\.so(\.[0-9.]+)?$/;

/** Directories searched besides what `ldconfig -p` lists (libraries not in the loader's cache). */
function libraryDirs(): string[] {
  const dirs = ['/lib', '/lib64', '/usr/lib', '/usr/lib64', '/usr/local/lib'];
  for (const base of ['/lib', '/usr/lib']) {
    for (const d of readdir(base)) if (/-linux-gnu/.test(d)) dirs.push(path.join(base, d));
  }
  // Debian's flavour directories: /usr/lib/<triplet>/hdf5/{serial,openmpi,mpich}.
  for (const d of [...dirs]) for (const flavour of readdir(path.join(d, 'hdf5'))) dirs.push(path.join(d, 'hdf5', flavour));
  return dirs;
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** `ldconfig -p` as [soname, path] pairs ([] when ldconfig is missing). */
function loaderCache(): [string, string][] {
  let out = '';
  try {
    out = execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    try {
      out = execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return [];
    }
  }
  const pairs: [string, string][] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\S+)\s.*=>\s*(\S+)\s*$/.exec(line);
    if (m) pairs.push([m[1]!, m[2]!]);
  }
  return pairs;
}

export interface HiddenLibraries {
  /** Real files (symlinks resolved, deduplicated) that /dev/null is mounted over. */
  files: string[];
  /** Names the loader resolves to them (`ldconfig -p`), e.g. libz.so.1, libhdf5_serial.so.103. */
  sonames: string[];
}

/** The system's libhdf5*, libsz, libaec and libz shared libraries. */
export function findHiddenLibraries(): HiddenLibraries {
  const files = new Set<string>();
  const sonames = new Set<string>();
  const consider = (file: string): void => {
    if (!HIDDEN_NAME.test(path.basename(file))) return;
    try {
      const real = fs.realpathSync(file);
      if (fs.statSync(real).isFile()) files.add(real);
    } catch {
      // a dangling symlink: nothing to hide
    }
  };
  for (const [soname, file] of loaderCache()) {
    if (!HIDDEN_NAME.test(soname)) continue;
    sonames.add(soname);
    consider(file);
  }
  for (const dir of libraryDirs()) for (const name of readdir(dir)) consider(path.join(dir, name));
  return { files: [...files].sort(), sonames: [...sonames].sort() };
}

/** Why commands cannot be run with libraries hidden here, or null when they can. */
export function namespaceUnavailable(): string | null {
  if (process.platform !== 'linux') return `mount namespaces are Linux-only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'needs root: mount --bind inside `unshare -m` (CI runs as root)';
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'mount', '--bind', '/dev/null', '/dev/null'], { encoding: 'utf8' });
  if (r.error) return `util-linux's unshare is not available (${r.error.message})`;
  if (r.status !== 0) return `unshare -m / mount --bind fails here: ${(r.stderr || '').trim() || `exit ${r.status}`}`;
  return null;
}

const MOUNT_THEN_EXEC = `set -e
IFS='
'
for f in $CHECKPOINTER_HIDE; do mount --bind /dev/null "$f"; done
unset IFS CHECKPOINTER_HIDE
exec "$@"`;

/** Runs `cmd args` with `files` hidden (empty); throws if a mount fails. */
export function runHidden(
  files: readonly string[],
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): SpawnSyncReturns<string> {
  const env = { ...(opts.env ?? process.env), CHECKPOINTER_HIDE: files.join('\n') };
  return spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', MOUNT_THEN_EXEC, 'sh', cmd, ...args], {
    cwd: opts.cwd,
    env,
    encoding: 'utf8',
    timeout: opts.timeout ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
  });
}
