/** Seconds between laps, for the perf/*_s metrics that say where a step's time goes. */
export class Clock {
  private last = performance.now();

  /** Seconds since the previous lap (or since the clock was made). */
  lap(): number {
    const now = performance.now();
    const s = (now - this.last) / 1000;
    this.last = now;
    return s;
  }
}
