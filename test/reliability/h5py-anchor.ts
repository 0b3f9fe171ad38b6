/**
 * The anchor of the kill campaign: the same checkpoint loop written by h5py in place (Debian's
 * python3-h5py), killed and checked the same way, so docs/reliability.md can put our figures
 * beside what Python users get today. h5py has no async calls to time a kill into, so only the
 * parent's random-delay kills are used.
 */
import { PYTHON } from '../helpers/python';
import { runChild } from './common';
import type { KillSubject } from './kill';

/** The values of common.ts (positions, params0, slots), computed the same way in Python. */
const SHARED = String.raw`
import sys, os, json
import numpy as np, h5py
SLOTS = 4
def plen(i, maxlen): return 1000 + (i * 7919) % max(1, maxlen - 1000)
def positions(i, maxlen): return i + np.arange(plen(i, maxlen), dtype=np.float64) / 1024
def log_commit(log, i):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (json.dumps({'committed': i}) + '\n').encode()); os.fsync(fd); os.close(fd)
def last_logged(log):
    try:
        lines = open(log).read().split('\n')[:-1]
    except FileNotFoundError:
        return -1
    for line in reversed(lines):
        try: return json.loads(line)['committed']
        except Exception: pass
    return -1
def commit(f, i, maxlen):
    with h5py.File(f, 'a') as h:
        def put(k, v):
            if k in h: del h[k]
            h[k] = v
        put('step', i)
        put('positions', positions(i, maxlen))
        if 'params' in h: del h['params']
        g = h.create_group('params'); g['alpha'] = i / 8; g['name'] = 'run-%d' % i; g['count'] = i
        put('tag', 'iteration %d' % i)
        put('slot%d' % (i % SLOTS), i)
`;

const WRITER = `${SHARED}
cfg = json.loads(sys.argv[1])
print('ready', flush=True)
i = cfg['start']
while True:
    commit(cfg['file'], i, cfg['maxLength'])
    log_commit(cfg['log'], i)
    i += 1
`;

const VERIFIER = `${SHARED}
cfg = json.loads(sys.argv[1])
f, log, maxlen = cfg['file'], cfg['log'], cfg['maxLength']
def lost_against(h, i):
    want = {'step': i, 'positions': positions(i, maxlen), 'params/alpha': i / 8, 'params/name': 'run-%d' % i,
            'params/count': i, 'tag': 'iteration %d' % i}
    for s in range(SLOTS):
        v = i - ((i - s) % SLOTS)
        if v >= 0: want['slot%d' % s] = v
    lost = []
    for k, w in want.items():
        try:
            got = h[k][()]
            if isinstance(got, bytes): got = got.decode()
            ok = (got.shape == w.shape and got.dtype == w.dtype and got.tobytes() == w.tobytes()) if isinstance(w, np.ndarray) else got == w
        except Exception:
            ok = False
        if not ok: lost.append(k.split('/')[0])
    return sorted(set(lost), key=lost.index)
if cfg['phase'] == 'check':
    logged = last_logged(log)
    existed = os.path.exists(f)
    r = dict(existed=existed, opened=False, openError=None, committed=logged, lostKeys=[], framesLost=0, framesInFile=0,
             beforeFirstCommit=logged < 0, emptyButValid=None, nextWriterOk=False, nextWriterError=None)
    if not existed and logged < 0:
        r['opened'] = True; r['emptyButValid'] = True
    else:
        try:
            with h5py.File(f, 'r') as h:
                keys = list(h.keys())
                r['opened'] = True
                if logged < 0:
                    r['emptyButValid'] = len(keys) == 0
                    if keys:
                        if not lost_against(h, 0): r['committed'] = 0
                        else: r['lostKeys'] = ['unexpected:' + k for k in keys]
                else:
                    lost = lost_against(h, logged)
                    if lost:
                        if not lost_against(h, logged + 1): r['committed'] = logged + 1
                        else: r['lostKeys'] = lost
        except Exception as e:
            r['openError'] = '%s: %s' % (type(e).__name__, str(e)[:300])
    if r['committed'] > logged: log_commit(log, r['committed'])
else:
    r = dict(nextWriterOk=False, nextWriterError=None)
    nxt = last_logged(log) + 1
    try:
        commit(f, nxt, maxlen)
        log_commit(log, nxt)
        with h5py.File(f, 'r') as h:
            lost = lost_against(h, nxt)
        r['nextWriterOk'] = not lost
        if lost: r['nextWriterError'] = 'after the next commit, lost: ' + ', '.join(lost)
    except Exception as e:
        r['nextWriterError'] = '%s: %s' % (type(e).__name__, str(e)[:300])
print(json.dumps(r))
`;

export function h5pySubject(): KillSubject {
  return {
    name: 'h5py 3.7 in place (.h5 checkpoint loop)',
    ext: '.h5',
    loop: 'checkpoint',
    modes: ['random'],
    maxDelayMs: 400,
    maxLength: 120_000,
    runWriter: (cfg, onReady) => {
      let ready = false;
      return runChild(PYTHON, ['-c', WRITER, JSON.stringify(cfg)], {
        timeoutMs: 60_000,
        onStdout: (chunk, child) => {
          if (!ready && chunk.includes('ready')) {
            ready = true;
            onReady(() => child.kill('SIGKILL'));
          }
        },
      });
    },
    runVerifier: (cfg) => runChild(PYTHON, ['-c', VERIFIER, JSON.stringify(cfg)], { timeoutMs: 60_000 }),
  };
}
