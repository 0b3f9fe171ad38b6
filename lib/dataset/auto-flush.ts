/**
 * The `autoFlush` option of dataset handles (DatasetOptions.autoFlush), one implementation for
 * every format: counts the frames appended since the last flush, says when a flush is due (every
 * N frames, or once T ms have passed — checked at each append), and for handles used through the
 * async API arms a timer, so frames appended and then left alone are flushed within T ms too.
 */
import { AutoFlush, checkAutoFlush } from './types';

export class AutoFlushCounter {
  #policy: AutoFlush | null;
  #sinceFlush = 0;
  #flushedAt = Date.now();
  #timer: NodeJS.Timeout | null = null;

  /** `flushLater` is what the timer runs (the handle's own async flush, if it is still usable). */
  constructor(policy: AutoFlush | null | undefined, private readonly flushLater: () => void) {
    this.#policy = checkAutoFlush(policy);
  }

  get enabled(): boolean {
    return this.#policy !== null;
  }

  /** Replaces the policy (a later handle on a shared dataset asked for another). */
  set(policy: AutoFlush | null | undefined): void {
    this.#policy = checkAutoFlush(policy);
  }

  /** `count` frames were appended: whether a flush is due now. */
  appended(count: number, async: boolean): boolean {
    const a = this.#policy;
    if (!a || count === 0) return false;
    this.#sinceFlush += count;
    if ((a.frames !== undefined && this.#sinceFlush >= a.frames) || (a.ms !== undefined && Date.now() - this.#flushedAt >= a.ms)) return true;
    if (async && a.ms !== undefined && this.#timer === null) {
      // unref'd: the timer keeps no process alive.
      this.#timer = setTimeout(() => {
        this.#timer = null;
        if (this.#sinceFlush > 0) this.flushLater();
      }, Math.max(1, a.ms - (Date.now() - this.#flushedAt)));
      this.#timer.unref();
    }
    return false;
  }

  /** A flush (or close) happened: counting starts again. */
  flushed(): void {
    this.#sinceFlush = 0;
    this.#flushedAt = Date.now();
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}
