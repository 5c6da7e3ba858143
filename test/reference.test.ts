/**
 * The reference rows of a comparison (majority class, bag-of-words logistic regression) and the paired
 * statistics, end to end: `gta report` on a miniature sweep of hand-made run directories (no training,
 * so the expected differences are known exactly).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDataset } from '../src/data/load.js';
import { bowLogregReference, bowTerms, majorityReference } from '../src/eval/reference.js';
import { writeSyntheticCsv } from './helpers/synthetic.js';
import { gta, tinyConfig } from './helpers/cli.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gta-ref-'));
const jsonl = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

test('bowTerms: lowercase unigrams and bigrams, once each', () => {
  assert.deepEqual(bowTerms("A good, GOOD film isn't bad"), ['a', 'good', 'film', "isn't", 'bad', 'a good', 'good good', 'good film', "film isn't", "isn't bad"]);
});

test('references on a synthetic task: the majority row is the label frequency, the bag of words finds the keywords', async () => {
  const files = writeSyntheticCsv(tmp());
  const ds = await loadDataset({ train_file: files.train, dev_file: files.dev, test_file: files.test, text_column: 'text', label_column: 'label', dev_fraction: 0.1 }, 0);
  const freq = (split: 'train' | 'dev' | 'test', k: number) => ds[split].filter((e) => e.label === k).length / ds[split].length;
  const majority = freq('train', 0) >= freq('train', 1) ? 0 : 1;
  const m = majorityReference(ds);
  assert.equal(m.dev.accuracy, freq('dev', majority));
  assert.equal(m.test!.accuracy, freq('test', majority));
  // weighted F1 of a constant prediction: only the majority class scores, F1 = 2p/(1+p) weighted by its share p
  const p = freq('dev', majority);
  assert.ok(Math.abs(m.dev.f1_weighted - p * ((2 * p) / (1 + p))) < 1e-12);
  const t0 = Date.now();
  const bow = bowLogregReference(ds);
  assert.ok(bow.dev.accuracy >= 0.97 && bow.test!.accuracy >= 0.97, JSON.stringify(bow));
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  assert.deepEqual(bowLogregReference(ds), bow, 'seeded: the same scores again');
});

/** A finished run directory as training leaves it, with the files the report reads. */
function fakeRun(dir: string, config: string, mode: string, seed: number, dev: number[], test: number[]) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.resolved.yaml'), `${config}mode: ${mode}\n`);
  fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify({ status: 'finished', mode, seed, dataset: { name: 'tiny' } }));
  const acc = (c: number[]) => c.reduce((a, b) => a + b, 0) / c.length;
  fs.writeFileSync(path.join(dir, 'metrics.jsonl'), [10, 20].map((step) => JSON.stringify({ step, split: 'dev', time_s: step, examples_seen: 16 * step, tokens_seen: 100 * step, 'eval/accuracy': acc(dev) * (step / 20), 'eval/f1_weighted': acc(dev) * (step / 20) })).join('\n') + '\n');
  const scores = (split: string, c: number[]) => ({ split, accuracy: acc(c), f1_weighted: acc(c) });
  fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ status: 'finished', train_tokens: 2000, final: scores('dev', dev), test: scores('test', test) }));
  const lines = [...dev.map((c, index) => ({ split: 'dev', index, c })), ...test.map((c, index) => ({ split: 'test', index, c }))];
  fs.writeFileSync(path.join(dir, 'predictions.jsonl'), lines.map(({ split, index, c }) => JSON.stringify({ split, step: 20, index, text: 'x', gold: 'positive', predicted: c ? 'positive' : 'negative', correct: c === 1 })).join('\n') + '\n');
}

test('gta report: reference rows first for each dataset, and the paired differences in stats.jsonl and compare.md', () => {
  const dir = tmp();
  const config = fs.readFileSync(tinyConfig(dir), 'utf8');
  const sweep = path.join(dir, 'sweep');
  // 100 test examples: sft right on the first 60 (seed 1) or 62 (seed 2), gta on the first 70 or 72, so gta - sft is 0.10 on every example it differs
  const first = (k: number) => Array.from({ length: 100 }, (_, i) => (i < k ? 1 : 0));
  for (const [mode, base] of [['sft', 60], ['gta', 70]] as const) {
    for (const seed of [1, 2]) fakeRun(path.join(sweep, 'runs', `tiny-${mode}-seed${seed}`), config, mode, seed, first(base - 10 + seed), first(base + 2 * (seed - 1)));
  }
  const out = path.join(dir, 'report');
  const r = gta(['report', sweep, '--out', out, '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const rows = jsonl(path.join(out, 'compare.jsonl'));
  assert.deepEqual(rows.map((x) => x.arm), ['majority', 'bow-logreg', 'sft', 'gta']);
  assert.equal(rows[0].seeds, 1);
  assert.ok(rows[1].columns['test accuracy'].mean > 0.95, JSON.stringify(rows[1]));
  assert.equal(rows[0].columns['best accuracy'], null, 'a reference has no curve');
  assert.deepEqual(Object.keys(rows[0].columns), Object.keys(rows[2].columns), 'the same columns in the same order');

  const stats = jsonl(path.join(out, 'stats.jsonl'));
  assert.equal(stats.length, 1);
  const s = stats[0];
  assert.deepEqual([s.dataset, s.a, s.b, s.split, s.n_seeds, s.n_examples], ['tiny', 'gta', 'sft', 'test', 2, 100]);
  assert.ok(Math.abs(s.mean_diff - 0.1) < 1e-12, String(s.mean_diff)); // seed 1: 0.70 - 0.60, seed 2: 0.72 - 0.62
  assert.ok(Math.abs(s.t_interval[0] - 0.1) < 1e-12 && Math.abs(s.t_interval[1] - 0.1) < 1e-12, 'equal differences: a zero-width t interval');
  assert.ok(s.bootstrap_interval[0] > 0 && s.bootstrap_interval[0] < 0.1 && s.bootstrap_interval[1] > 0.1, JSON.stringify(s.bootstrap_interval));
  assert.equal(s.significant, true);

  const md = fs.readFileSync(path.join(out, 'compare.md'), 'utf8');
  assert.match(md, /\| tiny \| majority \| 1 \|/);
  assert.match(md, /^# report\n\n## Paired differences \(95% intervals\)\n\n\| dataset \| difference \|/);
  assert.ok(md.indexOf('| gta − sft |') < md.indexOf('| tiny | majority |') && md.indexOf('| tiny | gta | 2 |') < md.indexOf('## How the intervals were computed'), 'summary, table, details');
  assert.match(md, /\| tiny \| gta − sft \| test \| 2 \| \+0\.1000 \| \[\+0\.1000, \+0\.1000\] \| \[\+0\.\d{4}, \+0\.\d{4}\] \| significant \|/);
  assert.match(r.stdout, /\| tiny \| gta − sft \| test \|/);
  const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
  assert.ok(html.includes('<tr class="better"><td>tiny</td><td>gta − sft</td><td>test</td><td>2</td><td>+10.0 [+10.0, +10.0]</td>'), 'the pair in points, first');
  assert.ok(html.includes('gta is better than sft on tiny, by 10.0 points of test accuracy: both intervals exclude 0.'));
  assert.ok(html.indexOf('Paired differences') < html.indexOf('<h2>Arms</h2>'));
});
