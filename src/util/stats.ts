/** Plain statistics over number arrays (the metrics and GRPO's advantages share them). */

export function mean(xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length;
}

/**
 * Unbiased (n-1) standard deviation, as torch.std (which TRL uses). For a single value torch gives
 * NaN; this gives 0.
 */
export function stdUnbiased(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) * (x - m), 0) / (xs.length - 1));
}
