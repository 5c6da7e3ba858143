/**
 * The command line end to end on a tiny synthetic task: train from scratch, the run directory it
 * leaves, eval of the finished run, and the bad-input paths (exit code 2, one line, no run left).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { tmpDir } from './helpers/tiny.js';
import { GTA, ROOT, gta, tinyConfig } from './helpers/cli.js';

test('gta train learns a tiny task and leaves a complete run directory; gta eval re-scores it', () => {
  const dir = tmpDir();
  const r = gta(['train', '--config', tinyConfig(dir), '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  for (const f of ['config.resolved.yaml', 'run.json', 'metrics.jsonl', 'summary.json', 'predictions.jsonl', 'checkpoints/latest/model.safetensors', 'checkpoints/latest/optimizer.safetensors', 'checkpoints/best/config.json']) {
    assert.ok(fs.existsSync(path.join(runDir, f)), `missing ${f}`);
  }
  // best is for scoring: its weights, not the optimizer's moments (8 of its 12 bytes a parameter)
  assert.ok(!fs.existsSync(path.join(runDir, 'checkpoints/best/optimizer.safetensors')), 'best carries no optimizer state');
  const run = JSON.parse(fs.readFileSync(path.join(runDir, 'run.json'), 'utf8'));
  assert.equal(run.status, 'finished');
  assert.equal(run.backend.name, 'wasm');
  assert.equal(run.seed, 5);
  assert.ok('commit' in run.git && 'dirty' in run.git);
  const lines = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const train = lines.filter((l) => l.split === 'train');
  assert.equal(train.length, 15);
  assert.ok(train[train.length - 1]['train/loss_sft'] < train[0]['train/loss_sft'], 'training loss fell');
  const evals = lines.filter((l) => l.split === 'dev');
  assert.deepEqual(evals.map((l) => l.step), [50, 100, 150]);
  const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
  assert.ok(summary.final.accuracy >= 0.9, `dev accuracy ${summary.final.accuracy}`);
  assert.equal(summary.final.n, 100);

  const e = gta(['eval', '--run', runDir, '--split', 'test', '--log-level', 'warn'], dir);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /^test \(latest, step 150\): accuracy \d\.\d{4}/);
  const ev = JSON.parse(fs.readFileSync(path.join(runDir, 'eval-test-latest.json'), 'utf8'));
  assert.equal(ev.n, 100);
  assert.ok(ev.accuracy >= 0.85, `test accuracy ${ev.accuracy}`);
});

test('train.keep_checkpoints: a run keeps only the checkpoints it names; scoring one it did not keep is a one-line error', () => {
  const dir = tmpDir();
  const short = ['--set', 'train.steps=20', '--set', 'train.eval_every=10', '--set', 'train.checkpoint_every=10', '--log-level', 'warn'];
  const r = gta(['train', '--config', tinyConfig(dir), ...short, '--set', 'train.keep_checkpoints=[latest]'], dir);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  assert.deepEqual(fs.readdirSync(path.join(runDir, 'checkpoints')), ['latest']);
  const e = gta(['eval', '--run', runDir, '--checkpoint', 'best', '--log-level', 'warn'], dir);
  assert.equal(e.code, 2);
  assert.match(e.stderr.trim(), /best/);
  assert.equal(e.stderr.trim().split('\n').length, 1, e.stderr);
  const none = gta(['train', '--config', tinyConfig(dir), ...short, '--set', 'train.keep_checkpoints=[]', '--set', 'name=none'], dir);
  assert.equal(none.code, 0, none.stderr);
  const noneDir = none.stdout.split('\n')[0];
  assert.ok(!fs.existsSync(path.join(noneDir, 'checkpoints')) || fs.readdirSync(path.join(noneDir, 'checkpoints')).length === 0);
  assert.ok(fs.existsSync(path.join(noneDir, 'summary.json')), 'the run still finishes and reports');
});

test('bad input: exit code 2, a one-line message naming the file, and no run directory', () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir, 'bogus_key: 1\n');
  const r = gta(['train', '--config', cfg], dir);
  assert.equal(r.code, 2);
  assert.match(r.stderr.trim(), /^gta: error: .*tiny\.yaml:\d+:1: bogus_key: unknown key$/);
  assert.equal(fs.existsSync(path.join(dir, 'runs')), false);

  const bad = path.join(dir, 'bad.csv');
  fs.writeFileSync(bad, 'text,label\nfine film,positive\n,negative\n');
  const r2 = gta(['train', '--config', tinyConfig(dir), '--set', `data.train_file=${bad}`], dir);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr.trim().split('\n').pop()!, /bad\.csv:3: empty text$/);
  assert.equal(fs.existsSync(path.join(dir, 'runs')), false);

  const r3 = gta(['eval', '--run', dir], dir);
  assert.equal(r3.code, 2);
  assert.match(r3.stderr, /not a gta run directory/);
});

test('bad config: every problem at once with suggestions, an alias bomb as a config error; exit 2, no run directory', () => {
  const dir = tmpDir();
  const cfg = path.join(dir, 'c.yaml');
  fs.writeFileSync(cfg, `dataset: sst2\noutput_dir: ${path.join(dir, 'runs')}\ntrain:\n  learnin_rate: 0.1\n`);
  const r = gta(['train', '--config', cfg], dir);
  assert.equal(r.code, 2, r.stderr);
  assert.deepEqual(r.stderr.trimEnd().split('\n'), [
    `gta: error: 3 problems in ${cfg}:`,
    `  ${cfg}:1:1: data: required object is missing`,
    `  ${cfg}:1:1: dataset: unknown key (did you mean data.name?)`,
    `  ${cfg}:4:3: train.learnin_rate: unknown key (did you mean train.optim.lr?)`,
  ]);
  assert.equal(fs.existsSync(path.join(dir, 'runs')), false);

  const bomb = path.join(dir, 'bomb.yaml');
  const levels = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let i = 1; i < 9; i++) levels.push(`l${i}: &l${i} [${Array(9).fill(i === 1 ? '*a' : `*l${i - 1}`).join(', ')}]`);
  fs.writeFileSync(bomb, `${levels.join('\n')}\noutput_dir: ${path.join(dir, 'runs')}\n`);
  const b = gta(['train', '--config', bomb], dir);
  assert.equal(b.code, 2, b.stderr);
  assert.match(b.stderr.trim(), /^gta: error: .*bomb\.yaml: too many YAML aliases[^\n]*$/);
  assert.equal(fs.existsSync(path.join(dir, 'runs')), false);
});

test('a run killed mid-way leaves metrics.jsonl parseable line by line and run.json not finished', async () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  const child = spawn(process.execPath, [GTA, 'train', '--config', cfg, '--set', 'train.steps=100000', '--set', 'train.log_every=1', '--log-level', 'warn'], { cwd: dir });
  const runs = path.join(dir, 'runs');
  const metricsFile = () => {
    const d = fs.existsSync(runs) ? fs.readdirSync(runs) : [];
    return d.length ? path.join(runs, d[0], 'metrics.jsonl') : undefined;
  };
  for (let i = 0; i < 600; i++) {
    const f = metricsFile();
    if (f && fs.existsSync(f) && fs.readFileSync(f, 'utf8').split('\n').length > 20) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  const f = metricsFile()!;
  const text = fs.readFileSync(f, 'utf8');
  assert.ok(text.endsWith('\n'));
  const lines = text.trim().split('\n');
  assert.ok(lines.length >= 20, `${lines.length} lines`);
  for (const l of lines) JSON.parse(l);
  const run = JSON.parse(fs.readFileSync(path.join(path.dirname(f), 'run.json'), 'utf8'));
  assert.equal(run.status, 'running');
  assert.equal(fs.existsSync(path.join(path.dirname(f), 'summary.json')), false);
});

test('--help lists only the built commands', () => {
  const r = gta(['--help'], ROOT);
  assert.equal(r.code, 0);
  const commands = [...r.stdout.matchAll(/^ {2}gta (\S+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(commands, ['compare-baselines', 'corpus', 'eval', 'export', 'predict', 'pretrain', 'report', 'runs', 'train', 'worker']);
});

test('the command line loads neither TensorFlow.js nor BullMQ before a command needs it; gta train and a local sweep never load BullMQ', () => {
  // each gta a sweep or a test spawns paid ~0.6 s for the queue's BullMQ/ioredis and ~0.65 s for Node's ESM scan of tfjs
  const loaded = (module: string): string[] => {
    const script = `import { createRequire } from 'node:module'; await import(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'cli', module))}); console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as string[]).map((f) => f.replace(/.*node_modules\//, '')).filter((f) => /^(@tensorflow|bullmq|ioredis)\//.test(f));
  };
  assert.deepEqual(loaded('main.js'), []);
  const train = loaded('train.js');
  assert.ok(train.some((f) => f.startsWith('@tensorflow/tfjs/')), 'train loads tfjs');
  assert.deepEqual(train.filter((f) => !f.startsWith('@tensorflow/')), []);
  assert.deepEqual(loaded('compare.js').filter((f) => !f.startsWith('@tensorflow/')), [], 'a local sweep loads no queue');
});
