/**
 * The progress bar of a long convert: bytes done of the total, rate and time left, redrawn in place
 * on stderr at most every 100 ms. Only on a terminal: piped or redirected, nothing is drawn (a log
 * should not fill with carriage returns).
 */
import { formatBytes } from './format';

export interface Progress {
  add(bytes: number): void;
  /** A step after the bytes (the output's commit): shown in place of the ETA until done(). */
  phase(what: string): void;
  done(): void;
}

const NO_PROGRESS: Progress = { add() {}, phase() {}, done() {} };

function duration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

export function progressBar(total: number, stream: NodeJS.WriteStream, enabled: boolean, label: string): Progress {
  if (!enabled) return NO_PROGRESS;
  const started = Date.now();
  let done = 0;
  let last = 0;
  let step: string | null = null;
  const draw = (final: boolean): void => {
    const now = Date.now();
    if (!final && now - last < 100) return;
    last = now;
    const elapsed = (now - started) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% `
      + `${formatBytes(done)}/${formatBytes(total)} ${formatBytes(Math.round(rate))}/s ${step && !final ? `${step}...` : `ETA ${final ? duration(0) : duration(eta)}`}`;
    const columns = stream.columns || 80;
    stream.write(`\r${line.slice(0, columns - 1)}\x1b[K`);
  };
  return {
    add(bytes: number) {
      done += bytes;
      draw(false);
    },
    phase(what: string) {
      step = what;
      last = 0;
      draw(false);
    },
    done() {
      draw(true);
      stream.write('\n');
    },
  };
}
