/** The paired statistics of a comparison against hand-computed values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../src/util/rng.js';
import { excludesZero, pairedBootstrap, pairedComparisons, quantileSorted, tInterval, tQuantile, type Correctness } from '../src/report/statistics.js';
import type { RunRecord } from '../src/report/aggregate.js';

const close = (a: number, b: number, tol: number) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b} (±${tol})`);

test('tQuantile: the 97.5% points of Student t match the tables (and df 2 its closed form)', () => {
  // df 2: P(|T|<t) = t / sqrt(t^2 + 2), so t = 0.95 * sqrt(2 / (1 - 0.95^2))
  close(tQuantile(0.975, 2), 0.95 * Math.sqrt(2 / (1 - 0.95 ** 2)), 1e-12);
  close(tQuantile(0.975, 2), 4.302652730, 1e-8);
  close(tQuantile(0.975, 1), 12.70620474, 1e-7);
  close(tQuantile(0.975, 4), 2.776445105, 1e-8);
  close(tQuantile(0.975, 9), 2.262157163, 1e-8);
  close(tQuantile(0.975, 30), 2.042272456, 1e-8);
  close(tQuantile(0.975, 1000), 1.962339081, 1e-8);
  close(tQuantile(0.025, 5), -tQuantile(0.975, 5), 1e-12);
  close(tQuantile(0.5, 3), 0, 1e-12);
});

test('tInterval: diffs [0.02, 0.04, 0.03] give 0.03 ± 0.024841; one seed gives no interval', () => {
  const t = tInterval([0.02, 0.04, 0.03]);
  close(t.mean, 0.03, 1e-15);
  close(t.sd, 0.01, 1e-15);
  close(t.t!, 4.302652730, 1e-8);
  close(t.interval![0], 0.03 - 0.0248414, 1e-7);
  close(t.interval![1], 0.03 + 0.0248414, 1e-7);
  assert.equal(excludesZero(t.interval), true);
  const one = tInterval([0.05]);
  assert.equal(one.interval, null);
  assert.equal(excludesZero(one.interval), null);
  assert.equal(excludesZero(tInterval([-0.01, 0.02, 0.0]).interval), false, 'an interval across 0 is no significant difference');
});

test('quantileSorted interpolates between order statistics as numpy does', () => {
  assert.equal(quantileSorted([1, 2, 3, 4, 5], 0.5), 3);
  close(quantileSorted([1, 2, 3, 4], 0.025), 1.075, 1e-12);
  close(quantileSorted([1, 2, 3, 4], 0.975), 3.925, 1e-12);
});

test('pairedBootstrap: identical differences give a zero-width interval at that value; a seeded run repeats exactly', () => {
  const a = [1, 1, 0, 1, 0.5];
  const b = [0.5, 0.5, -0.5, 0.5, 0]; // every difference is 0.5
  const r = pairedBootstrap(a, b, new Rng(7));
  assert.deepEqual(r, { mean: 0.5, interval: [0.5, 0.5] });
  const x = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const y = Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? 1 : 0));
  const first = pairedBootstrap(x, y, new Rng(11));
  assert.deepEqual(pairedBootstrap(x, y, new Rng(11)), first);
  close(first.mean, (67 - 50) / 200, 1e-12);
  assert.ok(first.interval[0] < first.mean && first.mean < first.interval[1], String(first.interval));
  // d is 1 on 50 examples, -1 on 33, else 0: sd(d) = 0.6386, so the normal approximation's 95% half-width
  // 1.96 * sd / sqrt(200) is 0.0885; the percentile interval lands near it
  close(first.interval[1] - first.interval[0], 2 * 0.0885, 0.02);
});

test('pairedComparisons: pairs by seed, uses test when every run has it, pools seeds per example', () => {
  const run = (mode: string, seed: number, dev: number, testAcc: number | null): RunRecord => ({
    dir: `${mode}-${seed}`, dataset: 'd', mode, arm: mode, seed, status: 'finished', evals: [], rewards: [], tokens: 0,
    final: { accuracy: dev, f1_weighted: dev }, test: testAcc === null ? null : { accuracy: testAcc, f1_weighted: testAcc },
  });
  const records = [run('sft', 1, 0.5, 0.6), run('sft', 2, 0.5, 0.62), run('gta', 1, 0.7, 0.62), run('gta', 2, 0.7, 0.66), run('gta', 3, 0.7, 0.7), run('rl', 1, 0.55, null), run('rl', 2, 0.6, null)];
  // 4 test examples; gta always right on 0-2, sft right on 0 only (seed 1) or 0-1 (seed 2); dev predictions only for rl
  const preds: Record<string, Correctness> = {
    'sft-1': new Map([['test', new Map([[0, 1], [1, 0], [2, 0], [3, 0]])]]),
    'sft-2': new Map([['test', new Map([[0, 1], [1, 1], [2, 0], [3, 0]])]]),
    'gta-1': new Map([['test', new Map([[0, 1], [1, 1], [2, 1], [3, 0]])]]),
    'gta-2': new Map([['test', new Map([[0, 1], [1, 1], [2, 1], [3, 0]])], ['dev', new Map([[0, 1]])]]),
  };
  const stats = pairedComparisons(records, (r) => preds[r.dir]);
  assert.deepEqual(stats.map((s) => `${s.a}-${s.b}:${s.split}:${s.n_seeds}`), ['gta-sft:test:2', 'gta-rl:dev:2', 'rl-sft:dev:2']);
  const [gs, gr, rs] = stats;
  assert.deepEqual(gs.seeds, [1, 2], 'gta seed 3 has no sft partner');
  close(gs.diffs[0], 0.02, 1e-12);
  close(gs.diffs[1], 0.04, 1e-12);
  close(gs.mean_diff, 0.03, 1e-12);
  // pooled: gta [1, 1, 1, 0], sft [1, 0.5, 0, 0] -> differences [0, 0.5, 1, 0], mean 0.375
  assert.equal(gs.n_examples, 4);
  close(gs.bootstrap_mean!, 0.375, 1e-12);
  // two seeds: t(0.975, 1) = 12.706 makes the t interval 0.03 ± 0.127, across 0
  close(gs.t_interval![1] - gs.mean_diff, 12.70620474 * Math.SQRT2 * 0.01 / Math.SQRT2, 1e-7);
  assert.equal(gs.significant, false);
  // rl has no test score, so gta-rl falls back to dev; dev predictions are missing for rl: no bootstrap
  close(gr.mean_diff, (0.15 + 0.1) / 2, 1e-12);
  assert.equal(gr.bootstrap_interval, null);
  assert.equal(gr.n_examples, 0);
  assert.equal(gr.significant, false, 'the t interval alone decides, and it holds 0');
  close(rs.mean_diff, 0.075, 1e-12);
  // the same inputs give the same lines (the bootstrap's stream is named by dataset and pair)
  assert.deepEqual(pairedComparisons(records, (r) => preds[r.dir]), stats);
});

test('statsSummary: one row per pair; a split verdict says which interval excludes 0', async () => {
  const { statsSummary } = await import('../src/report/stats_markdown.js');
  const line = { dataset: 'd', a: 'rl', b: 'sft', split: 'dev', n_seeds: 2, seeds: [1, 2], diffs: [0.26, 0], mean_diff: 0.13, sd: 0.1838, t_quantile: 12.7062, t_interval: [-1.5218, 1.7818] as [number, number], n_examples: 100, bootstrap_mean: 0.13, bootstrap_interval: [0.08, 0.18] as [number, number], significant: false };
  assert.equal(statsSummary([line]), [
    '| dataset | difference | split | seeds | mean diff | t 95% (seeds) | bootstrap 95% (examples) | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    '| d | rl − sft | dev | 2 | +0.1300 | [-1.5218, +1.7818] | [+0.0800, +0.1800] | no significant difference (over seeds; it is over examples) |',
    '',
  ].join('\n'));
  assert.match(statsSummary([{ ...line, n_seeds: 1, t_quantile: null, t_interval: null, bootstrap_interval: [-0.01, 0.2], significant: false }]), /\| – \| \[-0\.0100, \+0\.2000\] \| no significant difference \|/);
});
