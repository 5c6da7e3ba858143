/**
 * A miniature sweep (tiny model, few steps, 2 modes x 2 seeds): the aggregated numbers must match the
 * runs' own metrics, and a second invocation must re-use the finished runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { tmpDir } from './helpers/tiny.js';
import { GTA, gta, tinyConfig } from './helpers/cli.js';
import { writeSweep } from './helpers/queue.js';

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
    const row = rows.find((x) => x.arm === mode);
    assert.equal(row.seeds, 2);
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);
    close(row.columns['final accuracy'].mean, (finals[0] + finals[1]) / 2);
    close(row.columns['final accuracy'].std, Math.abs(finals[0] - finals[1]) / Math.SQRT2);
    close(row.columns['best accuracy'].mean, (Math.max(...evals[0].map((e) => e['eval/accuracy'])) + Math.max(...evals[1].map((e) => e['eval/accuracy']))) / 2);
    const at10 = curves.find((c) => c.arm === mode && c.step === 10);
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

test('compare-baselines with named arms: each arm its runs and rows, the named pairs in stats.jsonl, and `gta report` on the folder rebuilds the same files', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'tiny-sft.yaml'), `${read(tinyConfig(dir))}mode: sft\n`);
  const cfg = path.join(dir, 'arms.yaml');
  fs.writeFileSync(
    cfg,
    `name: arms
output_dir: ${path.join(dir, 'sweep')}
datasets: [tiny]
arms:
  - { name: sft, mode: sft }
  - { name: sft-short, mode: sft, set: [train.steps=10] }
pairs: [[sft, sft-short]]
seeds: [1, 2]
jobs: 2
config_template: ${path.join(dir, '{dataset}-{mode}.yaml')}
set: [train.steps=20, train.eval_every=10, train.log_every=5, eval.test_at_end=true]
`,
  );
  const r = gta(['compare-baselines', '--config', cfg, '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const out = path.join(dir, 'sweep');
  assert.deepEqual(fs.readdirSync(path.join(out, 'runs')).sort(), ['tiny-sft-seed1', 'tiny-sft-seed2', 'tiny-sft-short-seed1', 'tiny-sft-short-seed2']);
  const info = JSON.parse(read(path.join(out, 'runs', 'tiny-sft-short-seed1', 'run.json')));
  assert.equal(info.arm, 'sft-short');
  assert.equal(info.mode, 'sft');
  assert.equal(jsonl(path.join(out, 'runs', 'tiny-sft-short-seed1', 'metrics.jsonl')).filter((l) => l.split === 'train').pop().step, 10, "the arm's own set wins over the sweep's");
  const rows = jsonl(path.join(out, 'compare.jsonl'));
  assert.deepEqual(rows.map((x) => x.arm), ['majority', 'bow-logreg', 'sft', 'sft-short']);
  const stats = jsonl(path.join(out, 'stats.jsonl'));
  assert.deepEqual(stats.map((s) => [s.a, s.b, s.split, s.n_seeds]), [['sft', 'sft-short', 'test', 2]]);
  const testAcc = (arm: string, seed: number) => JSON.parse(read(path.join(out, 'runs', `tiny-${arm}-seed${seed}`, 'summary.json'))).test.accuracy;
  assert.deepEqual(stats[0].diffs, [1, 2].map((s) => testAcc('sft', s) - testAcc('sft-short', s)));
  assert.deepEqual(JSON.parse(read(path.join(out, 'sweep.json'))).pairs, [['sft', 'sft-short']]);

  const rebuilt = path.join(dir, 'rebuilt');
  const rep = gta(['report', out, '--out', rebuilt, '--log-level', 'warn'], dir);
  assert.equal(rep.code, 0, rep.stderr);
  for (const f of ['compare.jsonl', 'stats.jsonl', 'curves.jsonl', 'compare.md']) assert.equal(read(path.join(rebuilt, f)), read(path.join(out, f)), f);
});

test('a sweep config with arms is checked: modes and arms together, an arm named twice, a pair naming no arm', async () => {
  const { loadConfig } = await import('../src/config/load.js');
  const { CompareConfigSchema } = await import('../src/config/schema.js');
  const dir = tmpDir();
  const check = (body: string, expected: RegExp) => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, `name: bad\ndatasets: [sst2]\n${body}`);
    assert.throws(() => loadConfig(CompareConfigSchema, file), expected);
  };
  check('modes: [sft]\narms: [{ name: a, mode: sft }]\n', /bad\.yaml:3:1: modes: give modes or arms, not both/);
  check('arms: [{ name: a, mode: sft }, { name: a, mode: rl }]\n', /arms\.1\.name: arm 'a' is named twice/);
  check('arms: [{ name: a, mode: sft }]\npairs: [[a, b]]\n', /pairs\.0\.1: 'b' is not an arm of this sweep \(a\)/);
  check('pairs: [[gta, gta]]\n', /pairs\.0: a pair compares two different arms/);
  // no arms: the modes are the arms, and the default pairs are reported
  fs.writeFileSync(path.join(dir, 'ok.yaml'), 'name: ok\ndatasets: [sst2]\nmodes: [sft, gta]\n');
  assert.deepEqual(loadConfig(CompareConfigSchema, path.join(dir, 'ok.yaml')).config.arms, [{ name: 'sft', mode: 'sft', set: [] }, { name: 'gta', mode: 'gta', set: [] }]);
});

test('the copy-guess diagnostic: GTA arms get the accuracy their answers would have if they copied the guess', async () => {
  const { aggregate } = await import('../src/report/aggregate.js');
  const run = (arm: string, seed: number, guess?: number) => ({
    dir: `${arm}-${seed}`, dataset: 'd', mode: arm === 'sft' ? 'sft' : 'gta', arm, seed, status: 'finished', evals: [{ step: 1, time_s: 1, examples: 8, tokens: 80, accuracy: 0.5, f1_weighted: 0.5 }], rewards: [], tokens: 80,
    final: { accuracy: 0.5, f1_weighted: 0.5, ...(guess === undefined ? {} : { guess_accuracy: guess }) },
    test: { accuracy: 0.6, f1_weighted: 0.6, ...(guess === undefined ? {} : { guess_accuracy: guess + 0.1 }) },
  });
  const { rows } = aggregate([run('sft', 1), run('gta-none', 1, 0.4), run('gta-none', 2, 0.6), run('gta', 1, 0.3)]);
  assert.deepEqual(rows.map((r) => r.arm), ['sft', 'gta', 'gta-none'], 'arms by mode, the one named after its mode first');
  const col = (arm: string, c: string) => rows.find((r) => r.arm === arm)!.columns[c] as { mean: number } | undefined;
  assert.ok(Math.abs(col('gta-none', 'final copy-guess accuracy')!.mean - 0.5) < 1e-12);
  assert.ok(Math.abs(col('gta-none', 'test copy-guess accuracy')!.mean - 0.6) < 1e-12);
  assert.equal(col('sft', 'test copy-guess accuracy'), undefined);
});

test('Ctrl-C on a local sweep (SIGINT to its process group): it waits for its runs, each stopped after its step, marked interrupted with a checkpoint there; it says how to go on, and they resume', async () => {
  const dir = tmpDir();
  const out = path.join(dir, 'sweep');
  // GTA: a step that awaits its rollout, so the sweep's going reaches a run in the middle of one
  const cfg = writeSweep(dir, 'sweep.yaml', { out, modes: ['gta'], seeds: [1, 2, 3], set: ['train.steps=100000', 'train.log_every=1', 'train.eval_every=100000', 'train.checkpoint_every=100000', 'data.name=tiny', 'train.batch_size=16', 'rl.group_size=4', 'rl.think_max_tokens=2', 'model.max_seq_len=48'] });
  // its own process group, as a shell gives a foreground job
  const sweep = spawn(process.execPath, [GTA, 'compare-baselines', '--config', cfg, '--log-level', 'warn'], { cwd: dir, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  sweep.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => sweep.on('exit', (code) => r(code)));
  const runs = [1, 2].map((s) => path.join(out, 'runs', `tiny-gta-seed${s}`));
  const steps = (run: string) => (fs.existsSync(path.join(run, 'metrics.jsonl')) ? read(path.join(run, 'metrics.jsonl')).split('\n').length - 1 : 0);
  for (let i = 0; i < 1200 && !runs.every((r) => steps(r) >= 3); i++) await new Promise((r) => setTimeout(r, 50));
  process.kill(-sweep.pid!, 'SIGINT');
  assert.equal(await exited, 130);
  assert.match(stderr.trim().split('\n').pop()!, /^gta: error: interrupted: 2 runs stopped after their step, 1 not started; run the same command again to continue$/);
  const alive = () => {
    try {
      return process.kill(-sweep.pid!, 0);
    } catch {
      return false;
    }
  };
  assert.ok(!alive(), 'the sweep waited for its runs: none is left running');
  for (const run of runs) {
    const info = JSON.parse(read(path.join(run, 'run.json')));
    assert.equal(info.status, 'interrupted', `${run}: not left marked running`);
    assert.equal(JSON.parse(read(path.join(run, 'checkpoints', 'latest', 'trainer_state.json'))).step, info.step, 'a checkpoint at the step it stopped');
  }
  assert.ok(!fs.existsSync(path.join(out, 'runs', 'tiny-gta-seed3')), 'no run started after the stop');
  const resumed = gta(['train', '--resume', runs[0], '--set', 'train.steps=' + (JSON.parse(read(path.join(runs[0], 'run.json'))).step + 2), '--log-level', 'warn'], dir);
  assert.equal(resumed.code, 0, resumed.stderr);
});
