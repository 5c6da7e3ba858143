/** The paired comparisons (statistics.ts) for people: a summary table, per-pair details, and one-line notes for report.html. */
import { BOOTSTRAP_SAMPLES, excludesZero, type Interval, type PairStats } from './statistics.js';
import type { PairRow } from './render.js';

const signed = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(4)}` : '–');
const interval = (i: Interval | null) => (i ? `[${signed(i[0])}, ${signed(i[1])}]` : '–');
/** 'significant' needs every interval to exclude 0; when the two disagree, say which one does. */
function verdict(s: PairStats): string {
  if (s.significant === null) return 'no interval';
  if (s.significant) return 'significant';
  const [seeds, examples] = [excludesZero(s.t_interval), excludesZero(s.bootstrap_interval)];
  if (seeds && examples === false) return 'no significant difference (over examples; it is over seeds)';
  if (examples && seeds === false) return 'no significant difference (over seeds; it is over examples)';
  return 'no significant difference';
}
const pair = (s: PairStats) => `${s.a} − ${s.b}`;

/** One row per (dataset, pair): the accuracy difference and both 95% intervals. */
export function statsSummary(stats: PairStats[]): string {
  const header = ['dataset', 'difference', 'split', 'seeds', 'mean diff', 't 95% (seeds)', 'bootstrap 95% (examples)', 'verdict'];
  const rows = stats.map((s) => [s.dataset, pair(s), s.split, String(s.n_seeds), signed(s.mean_diff), interval(s.t_interval), interval(s.bootstrap_interval), verdict(s)]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n') + '\n';
}

/** How each interval was made, pair by pair. */
export function statsDetails(stats: PairStats[]): string {
  const lines = [
    `Accuracy of arm a minus arm b, runs paired by seed, on the test split when every run of the pair has a test score, else on the eval split. ` +
      `t: mean ± t(0.975, n−1) · sd / √n over the per-seed differences (none for one seed). ` +
      `Bootstrap: per example, correctness averaged over each arm's seeds, examples matched by index; ${BOOTSTRAP_SAMPLES} resamples of the examples with replacement (seeded), 2.5th and 97.5th percentiles of the mean difference. ` +
      `"significant": every interval computed excludes 0.`,
    '',
  ];
  for (const s of stats) {
    const t = s.t_quantile === null ? 'no t interval (one seed)' : `sd ${s.sd.toFixed(4)}, t ${s.t_quantile.toFixed(4)}, t interval ${interval(s.t_interval)}`;
    const boot = s.bootstrap_interval === null ? 'no bootstrap (predictions missing)' : `bootstrap over ${s.n_examples} examples: mean ${signed(s.bootstrap_mean!)}, interval ${interval(s.bootstrap_interval)}`;
    lines.push(`- ${s.dataset} ${pair(s)} (${s.split}): seeds ${s.seeds.join(', ')}, differences ${s.diffs.map(signed).join(', ')}; ${t}; ${boot}: ${verdict(s)}`);
  }
  return lines.join('\n') + '\n';
}

/** A difference of accuracies in percentage points, signed, one decimal: -0.034 is "-3.4". */
const points = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(x * 100).toFixed(1)}` : '–');
const pointsInterval = (i: Interval | null) => (i ? `[${points(i[0])}, ${points(i[1])}]` : '–');

export function pairRows(stats: PairStats[]): PairRow[] {
  return stats.map((s) => {
    const tone = s.significant ? (s.mean_diff > 0 ? 'better' : 'worse') : 'unclear';
    return {
      dataset: s.dataset,
      pair: pair(s),
      split: s.split,
      seeds: s.n_seeds,
      difference: `${points(s.mean_diff)} ${pointsInterval(s.t_interval)}`,
      bootstrap: s.bootstrap_interval ? `${points(s.bootstrap_mean ?? s.mean_diff)} ${pointsInterval(s.bootstrap_interval)}` : '–',
      verdict: plainVerdict(s),
      tone,
    };
  });
}

/** What a pair's intervals say, as a sentence: which arm is ahead and by how much, or that they cannot tell. */
export function plainVerdict(s: PairStats): string {
  const by = `${Math.abs(s.mean_diff * 100).toFixed(1)} points of ${s.split} accuracy`;
  if (s.significant === null) return `Cannot tell: one seed and no per-example predictions, so no interval for ${s.a} against ${s.b}.`;
  const both = s.t_interval !== null && s.bootstrap_interval !== null;
  if (s.significant) return `${s.a} is ${s.mean_diff > 0 ? 'better' : 'worse'} than ${s.b} on ${s.dataset}, by ${by}: ${both ? 'both intervals exclude' : 'the interval excludes'} 0.`;
  const [seeds, examples] = [excludesZero(s.t_interval), excludesZero(s.bootstrap_interval)];
  const lean = `${s.a} ${s.mean_diff >= 0 ? 'ahead' : 'behind'} by ${by}`;
  if (seeds && examples === false) return `No clear difference on ${s.dataset} (${lean}): the seeds agree, but over test examples the interval includes 0.`;
  if (examples && seeds === false) return `No clear difference on ${s.dataset} (${lean}): over examples the interval excludes 0, but the seeds disagree.`;
  return `No clear difference between ${s.a} and ${s.b} on ${s.dataset} (${lean}): the interval${both ? 's include' : ' includes'} 0.`;
}
