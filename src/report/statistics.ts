/**
 * Is one arm (a mode, or a variant of one) better than another? Two answers, both as 95% intervals of
 * a paired difference in accuracy: a t-interval over seeds (how much the difference moves with the training seed) and a
 * paired bootstrap over test examples (how much it moves with the examples that were drawn). Pure
 * functions: the caller reads the runs and their predictions.
 */
import { Rng, streamRng } from '../util/rng.js';
import { mean, stdUnbiased } from '../util/stats.js';
import type { RunRecord } from './aggregate.js';

/** The pairs a comparison reports unless its sweep names others, as a minus b (those whose arms ran). */
export const DEFAULT_PAIRS: readonly (readonly [string, string])[] = [['gta', 'sft'], ['gta', 'rl'], ['rl', 'sft']];
/** Bootstrap resamples: enough for a stable 2.5% percentile (50 resamples below it). */
export const BOOTSTRAP_SAMPLES = 2000;

export type Interval = [number, number];

/**
 * Quantile p of Student's t with df (a positive integer) degrees of freedom. Written here rather than
 * taken from @stdlib/stats-base-dists-t-quantile: that package pulls in 223 @stdlib packages for one
 * function. For integer df the CDF is a finite series (Abramowitz & Stegun 26.7.3-4), so bisection on
 * it gives the quantile to machine precision for any df.
 */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`t quantile: p must be in (0, 1), got ${p}`);
  if (!Number.isInteger(df) || df < 1) throw new Error(`t quantile: df must be a positive integer, got ${df}`);
  if (p < 0.5) return -tQuantile(1 - p, df);
  const target = 2 * p - 1; // P(|T| < t)
  let lo = 0;
  let hi = 1;
  while (tTwoSided(hi, df) < target) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-14 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (tTwoSided(mid, df) < target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** P(|T| < t) for t >= 0 (A&S 26.7.3 for odd df, 26.7.4 for even). */
function tTwoSided(t: number, df: number): number {
  const theta = Math.atan(t / Math.sqrt(df));
  const c2 = Math.cos(theta) ** 2;
  const s = Math.sin(theta);
  if (df % 2 === 0) {
    let term = 1;
    let sum = 1;
    for (let k = 2; k <= df - 2; k += 2) {
      term *= (c2 * (k - 1)) / k;
      sum += term;
    }
    return s * sum;
  }
  if (df === 1) return (2 / Math.PI) * theta;
  let term = Math.cos(theta);
  let sum = term;
  for (let k = 3; k <= df - 2; k += 2) {
    term *= (c2 * (k - 1)) / k;
    sum += term;
  }
  return (2 / Math.PI) * (theta + s * sum);
}

export interface TInterval { mean: number; sd: number; n: number; t: number | null; interval: Interval | null }

/** mean ± t_{0.975, n-1} * sd / sqrt(n) over paired differences; one difference gives no interval. */
export function tInterval(diffs: number[], level = 0.95): TInterval {
  const n = diffs.length;
  const m = mean(diffs);
  const sd = stdUnbiased(diffs);
  if (n < 2) return { mean: n ? m : NaN, sd: NaN, n, t: null, interval: null };
  const t = tQuantile(1 - (1 - level) / 2, n - 1);
  const half = (t * sd) / Math.sqrt(n);
  return { mean: m, sd, n, t, interval: [m - half, m + half] };
}

/** The q-quantile of sorted values, linearly interpolated between order statistics (numpy's default). */
export function quantileSorted(sorted: number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const i = Math.floor(h);
  return i + 1 < sorted.length ? sorted[i] + (h - i) * (sorted[i + 1] - sorted[i]) : sorted[i];
}

/**
 * Paired bootstrap of mean(a - b) over examples (a[i], b[i]: per-example correctness of two arms on
 * the same example, each averaged over its seeds): resample examples with replacement B times and
 * take the 95% percentile interval of the resampled means.
 */
export function pairedBootstrap(a: number[], b: number[], rng: Rng, samples = BOOTSTRAP_SAMPLES, level = 0.95): { mean: number; interval: Interval } {
  if (a.length !== b.length || a.length === 0) throw new Error(`paired bootstrap: ${a.length} and ${b.length} examples`);
  const n = a.length;
  const d = a.map((x, i) => x - b[i]);
  const means = new Array<number>(samples);
  for (let s = 0; s < samples; s++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += d[rng.int(n)];
    means[s] = sum / n;
  }
  means.sort((x, y) => x - y);
  const tail = (1 - level) / 2;
  return { mean: mean(d), interval: [quantileSorted(means, tail), quantileSorted(means, 1 - tail)] };
}

/** An interval that holds 0 (or none at all) says the data cannot tell the two arms apart. */
export function excludesZero(interval: Interval | null): boolean | null {
  return interval === null ? null : interval[0] > 0 || interval[1] < 0;
}

/** One line of stats.jsonl: arm a minus arm b on one dataset. */
export interface PairStats {
  dataset: string;
  a: string;
  b: string;
  /** The split both tests use: 'test' when every run of the pair has a test score, else the eval split ('dev'). */
  split: string;
  n_seeds: number;
  seeds: number[];
  /** Per-seed differences of accuracy on `split`, in seed order. */
  diffs: number[];
  mean_diff: number;
  sd: number;
  t_quantile: number | null;
  t_interval: Interval | null;
  /** Examples matched across every run of the pair; 0 when some run has no predictions for the split. */
  n_examples: number;
  bootstrap_mean: number | null;
  bootstrap_interval: Interval | null;
  /** Every interval computed excludes 0; null when neither could be computed. */
  significant: boolean | null;
}

/** What the bootstrap needs of a run's predictions.jsonl: per split, correctness by example index. */
export type Correctness = Map<string, Map<number, number>>;

/**
 * The paired comparisons of `pairs` on every dataset where both arms ran: runs are paired by seed;
 * `correctness(run)` gives a run's per-example correctness (undefined if it has none).
 */
export function pairedComparisons(records: RunRecord[], correctness: (r: RunRecord) => Correctness | undefined, pairs = DEFAULT_PAIRS): PairStats[] {
  const out: PairStats[] = [];
  for (const dataset of [...new Set(records.map((r) => r.dataset))].sort()) {
    const bySeed = (arm: string) => new Map(records.filter((r) => r.dataset === dataset && r.arm === arm).map((r) => [r.seed, r]));
    for (const [a, b] of pairs) {
      const ra = bySeed(a);
      const rb = bySeed(b);
      const seeds = [...ra.keys()].filter((s) => rb.has(s)).sort((x, y) => x - y);
      if (seeds.length === 0) continue;
      const runs = seeds.flatMap((s) => [ra.get(s)!, rb.get(s)!]);
      const useTest = runs.every((r) => r.test !== null);
      const acc = (r: RunRecord) => (useTest ? r.test!.accuracy : (r.final?.accuracy ?? r.evals[r.evals.length - 1]?.accuracy ?? NaN));
      // the eval split's name as its predictions say (a config may evaluate on another split than dev)
      const evalSplit = runs.flatMap((r) => [...(correctness(r)?.keys() ?? [])]).find((k) => k !== 'test') ?? 'dev';
      const split = useTest ? 'test' : evalSplit;
      const diffs = seeds.map((s) => acc(ra.get(s)!) - acc(rb.get(s)!));
      const t = tInterval(diffs);
      const boot = bootstrapPair(seeds.map((s) => ra.get(s)!), seeds.map((s) => rb.get(s)!), split, correctness, streamRng(0, `bootstrap:${dataset}:${a}-${b}`));
      const verdicts = [excludesZero(t.interval), excludesZero(boot?.interval ?? null)].filter((v) => v !== null);
      out.push({
        dataset, a, b, split, n_seeds: seeds.length, seeds, diffs,
        mean_diff: t.mean, sd: t.sd, t_quantile: t.t, t_interval: t.interval,
        n_examples: boot?.n ?? 0, bootstrap_mean: boot?.mean ?? null, bootstrap_interval: boot?.interval ?? null,
        significant: verdicts.length ? verdicts.every((v) => v) : null,
      });
    }
  }
  return out;
}

/** Seeds pooled per arm: per example, the mean correctness over that arm's runs; examples matched by index. */
function bootstrapPair(runsA: RunRecord[], runsB: RunRecord[], split: string, correctness: (r: RunRecord) => Correctness | undefined, rng: Rng) {
  const of = (runs: RunRecord[]) => runs.map((r) => correctness(r)?.get(split));
  const ca = of(runsA);
  const cb = of(runsB);
  if ([...ca, ...cb].some((c) => c === undefined || c.size === 0)) return null;
  const all = [...ca, ...cb] as Map<number, number>[];
  const indices = [...all[0].keys()].filter((i) => all.every((c) => c.has(i))).sort((x, y) => x - y);
  if (indices.length === 0) return null;
  const pooled = (cs: (Map<number, number> | undefined)[]) => indices.map((i) => mean(cs.map((c) => c!.get(i)!)));
  return { n: indices.length, ...pairedBootstrap(pooled(ca), pooled(cb), rng) };
}
