/**
 * Runs a snippet under Debian's Python with h5py and numpy imported (as `h5py`, `np`) and returns
 * what it passes to `out(...)`, decoded from JSON. `jsonable(x)` turns numpy values, bytes and
 * h5py.Empty into JSON-friendly values: arrays → nested lists (complex → [re, im]), bytes →
 * {"bytes": [...]}, Empty → {"empty": dtype}. Arguments arrive as sys.argv[1:].
 */
import { execFileSync } from 'node:child_process';
import { PYTHON } from './python';

export { PYTHON };

const PRELUDE = `
import sys, json, h5py, numpy as np
def jsonable(x):
    if isinstance(x, h5py.Empty): return {"empty": str(x.dtype)}
    if isinstance(x, (bytes, np.bytes_)): return {"bytes": list(bytes(x))}
    if isinstance(x, np.void): return {"void": list(x.tobytes())}
    if isinstance(x, np.ndarray):
        if x.dtype.kind == 'c': return jsonable(np.stack([x.real, x.imag], axis=-1))
        if x.dtype.kind in 'SO': return [jsonable(v) for v in x.tolist()] if x.ndim else jsonable(x[()])
        return x.tolist()
    if isinstance(x, (np.complexfloating, complex)): return [float(x.real), float(x.imag)]
    if isinstance(x, np.generic): return x.item()
    if isinstance(x, (list, tuple)): return [jsonable(v) for v in x]
    if isinstance(x, dict): return {k: jsonable(v) for k, v in x.items()}
    return x
def out(x):
    sys.stdout.write(json.dumps(jsonable(x)))
`;

/** Runs `code` (with `out(value)` to return a value) and returns the value. */
export function h5py<T = any>(code: string, ...args: string[]): T {
  const stdout = execFileSync(PYTHON, ['-c', PRELUDE + code, ...args], {
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return (stdout.length ? JSON.parse(stdout) : undefined) as T;
}
