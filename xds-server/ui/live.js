// Live updates: one poll loop for the page on view. A tick runs, then the next is scheduled
// `interval` after it ends (never two at once); a hidden tab is not polled at all, and
// becoming visible again polls at once.

export class Poller {
  /**
   * @param {number} interval ms between the end of one tick and the start of the next
   * @param {(signal: AbortSignal) => Promise<void>} tick
   * @param {(paused: boolean) => void} onPause told when polling pauses or resumes
   */
  constructor(interval, tick, onPause) {
    this.interval = interval;
    this.tick = tick;
    this.onPause = onPause;
    this.timer = null;
    this.controller = null;
    this.stopped = true;
    this.paused = false;
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) this.#pause();
      else if (this.paused && !this.stopped) this.now();
    });
  }

  /** Polls now (aborting a tick in flight), then every interval. */
  now() {
    this.stopped = false;
    clearTimeout(this.timer);
    this.controller?.abort();
    this.#run();
  }

  /** No more ticks until [`now`]. */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort();
  }

  #pause() {
    clearTimeout(this.timer);
    this.controller?.abort();
    if (!this.paused) { this.paused = true; this.onPause(true); }
  }

  async #run() {
    if (document.hidden) { this.#pause(); return; }
    if (this.paused) { this.paused = false; this.onPause(false); }
    const controller = new AbortController();
    this.controller = controller;
    try {
      await this.tick(controller.signal);
    } catch (e) {
      if (e?.name !== 'AbortError') console.error('console poll failed', e);
    }
    if (this.controller !== controller || this.stopped || document.hidden) return;
    this.timer = setTimeout(() => this.#run(), this.interval);
  }
}
