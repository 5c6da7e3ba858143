/**
 * Numbers for people: terminal lines, progress bars and tables. Files keep full precision (JSON);
 * what is printed gets as many digits as a reader can use.
 */

/** A wall time: `0.7 s`, `42.1 s`, `2 min 11 s`, `1 h 05 min`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/**
 * A metric in a progress line: integers as they are, large values rounded (tokens/s 8924), the rest
 * with 4 significant digits (loss 1.266, lr 0.0003, accuracy 0.531).
 */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 1000) return String(Math.round(v));
  return String(Number(v.toPrecision(4)));
}
