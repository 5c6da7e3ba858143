/**
 * A miniature sweep (tiny model, few steps, 2 modes x 2 seeds): the aggregated numbers must match the
 * runs' own metrics, and a second invocation must re-use the finished runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers/tiny.js';
import { gta, tinyConfig } from './helpers/cli.js';

const read = (f: string) => fs.readFileSync(f, 'utf8');
const jsonl = (f: string) => read(f).trim().split('\n').map((l) => JSON.parse(l));

test('compare-baselines: a miniature sweep aggregates its runs, and a second invocation re-uses them', () => {
  const dir = tmpDir();
  const base = read(tinyConfig(dir));
  for (const mode of ['sft', 'rl']) fs.writeFileSync(path.join(dir, `tiny-${mode}.yaml`), `${base}mode: ${mode}\n`);
  const cfg = path.join(dir, 'compare.yaml');
  fs.writeFileSync(
    cfg,
    `name: mini
output_dir: ${path.join(dir, 'sweep')}
datasets: [tiny]
modes: [sft, rl]
seeds: [1, 2]
jobs: 2
config_template: ${path.join(dir, '{dataset}-{mode}.yaml')}
set: [train.steps=30, train.eval_every=10, train.log_every=5, data.name=tiny, train.batch_size=16, rl.group_size=4, rl.think_max_tokens=2, model.max_seq_len=48]
`,
  );
  const r = gta(['compare-baselines', '--config', cfg, '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const out = path.join(dir, 'sweep');
  for (const f of ['compare.jsonl', 'compare.md', 'curves.jsonl', 'report.html', 'tiny-accuracy.svg', 'tiny-accuracy.png', 'tiny-accuracy-by-examples.svg', 'tiny-accuracy-by-tokens.svg', 'tiny-accuracy-by-seconds.svg', 'tiny-reward.svg']) assert.ok(fs.existsSync(path.join(out, f)), `missing ${f}`);
  assert.match(r.stdout, /\| tiny \| sft \|/);

  const rows = jsonl(path.join(out, 'compare.jsonl'));
  const curves = jsonl(path.join(out, 'curves.jsonl'));
  for (const mode of ['sft', 'rl']) {
    const runs = [1, 2].map((s) => path.join(out, 'runs', `tiny-${mode}-seed${s}`));
    const finals = runs.map((d) => JSON.parse(read(path.join(d, 'summary.json'))).final.accuracy);
    const evals = runs.map((d) => jsonl(path.join(d, 'metrics.jsonl')).filter((l) => l.split === 'dev'));
    const row = rows.find((x) => x.mode === mode);
    assert.equal(row.seeds, 2);
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);
    close(row.columns['final accuracy'].mean, (finals[0] + finals[1]) / 2);
    close(row.columns['final accuracy'].std, Math.abs(finals[0] - finals[1]) / Math.SQRT2);
    close(row.columns['best accuracy'].mean, (Math.max(...evals[0].map((e) => e['eval/accuracy'])) + Math.max(...evals[1].map((e) => e['eval/accuracy']))) / 2);
    const at10 = curves.find((c) => c.mode === mode && c.step === 10);
    close(at10.metrics['eval/accuracy'].mean, (evals[0][0]['eval/accuracy'] + evals[1][0]['eval/accuracy']) / 2);
    assert.equal(row.columns.tokens, Math.round(runs.map((d) => JSON.parse(read(path.join(d, 'summary.json'))).train_tokens).reduce((a, b) => a + b) / 2));
  }

  const stamps = () => fs.readdirSync(path.join(out, 'runs')).map((d) => fs.statSync(path.join(out, 'runs', d, 'metrics.jsonl')).mtimeMs);
  const before = stamps();
  const again = gta(['compare-baselines', '--config', cfg, '--log-level', 'warn'], dir);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(stamps(), before, 'finished runs are not trained again');
  assert.equal(read(path.join(out, 'compare.jsonl')), rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
});

test('eval.test_at_end scores test once after the last dev eval; eval lines and curves carry every budget axis', async () => {
  const { aggregate, readRun } = await import('../src/report/aggregate.js');
  const dir = tmpDir();
  const r = gta(['train', '--config', tinyConfig(dir), '--set', 'train.steps=40', '--set', 'train.eval_every=20', '--set', 'eval.test_at_end=true', '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  const evals = jsonl(path.join(runDir, 'metrics.jsonl')).filter((l) => l.split !== 'train');
  assert.deepEqual(evals.map((l) => [l.split, l.step]), [['dev', 20], ['dev', 40], ['test', 40]]);
  // 16 examples a step (tinyConfig's batch; an epoch's last batch is the remainder), and tokens as counted in training
  const seen = evals.map((l) => l.examples_seen);
  assert.ok(seen[0] === 320 && seen[1] > 600 && seen[1] <= 640 && seen[2] === seen[1], String(seen));
  assert.ok(evals.every((l) => l.tokens_seen > 0 && l.time_s >= 0));
  const summary = JSON.parse(read(path.join(runDir, 'summary.json')));
  assert.equal(summary.test.split, 'test');
  assert.equal(summary.test.accuracy, evals[2]['eval/accuracy']);
  const run = readRun(runDir);
  assert.equal(run.evals.length, 2, 'the test line is not on the dev curve');
  const agg = aggregate([run]);
  assert.equal((agg.rows[0].columns['test accuracy'] as { mean: number }).mean, summary.test.accuracy);
  const last = agg.curves.filter((c) => c.metrics['eval/accuracy']).pop()!;
  assert.deepEqual(Object.keys(last.metrics).filter((k) => ['examples_seen', 'tokens_seen', 'time_s'].includes(k)).sort(), ['examples_seen', 'time_s', 'tokens_seen']);
  assert.equal(last.metrics.examples_seen.mean, seen[1]);
});
