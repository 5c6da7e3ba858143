/** `gta runs`: one line per run, newest first, sweeps' runs with their sweep's name. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers/tiny.js';
import { gta, tinyConfig } from './helpers/cli.js';

test('gta runs lists finished, failed and sweep runs, newest first, with their columns', () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  const ok = gta(['train', '--config', cfg, '--set', 'train.steps=20', '--set', 'train.eval_every=10', '--log-level', 'warn'], dir);
  assert.equal(ok.code, 0, ok.stderr);
  const finished = path.basename(ok.stdout.split('\n')[0]);
  // A run that fails at its second step (a non-finite loss).
  const bad = gta(['train', '--config', cfg, '--set', 'name=broken', '--set', 'train.optim.lr=1e30', '--set', 'train.optim.warmup_steps=0', '--set', 'train.optim.grad_clip=0', '--set', 'train.steps=20', '--log-level', 'warn'], dir);
  assert.equal(bad.code, 1, bad.stderr);
  // A sweep folder holding a copy of the finished run, marked as started before both.
  const inSweep = path.join(dir, 'runs', 'mysweep', 'runs', 'train-sft-seed1');
  fs.cpSync(path.join(dir, 'runs', finished), inSweep, { recursive: true });
  const info = JSON.parse(fs.readFileSync(path.join(inSweep, 'run.json'), 'utf8'));
  fs.writeFileSync(path.join(inSweep, 'run.json'), JSON.stringify({ ...info, started: '2020-01-01T00:00:00.000Z' }));
  // Not a run: left out.
  fs.mkdirSync(path.join(dir, 'runs', 'scratch-notes'));

  const r = gta(['runs'], dir);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.deepEqual(lines[0].split(/\s{2,}/), ['run', 'mode', 'dataset', 'status', 'step', 'dev acc', 'time']);
  const rows = lines.slice(1).map((l) => l.split(/\s{2,}/));
  assert.deepEqual(rows.map((c) => c[0]), [rows[0][0], finished, 'mysweep/train-sft-seed1']);
  assert.match(rows[0][0], /^broken-/);
  assert.deepEqual(rows[0].slice(1, 4), ['sft', 'train', 'failed']);
  const [, mode, dataset, status, step, acc, time] = rows[1];
  assert.deepEqual([mode, dataset, status, step], ['sft', 'train', 'finished', '20']);
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'runs', finished, 'summary.json'), 'utf8'));
  assert.equal(acc, summary.final.accuracy.toFixed(4));
  assert.match(time, /^\d+\.\d s$/);
  assert.deepEqual(rows[2].slice(1, 6), rows[1].slice(1, 6));

  // A sweep folder or one run directory can be listed too; a missing folder is a one-line error.
  assert.deepEqual(gta(['runs', path.join('runs', 'mysweep')], dir).stdout.trimEnd().split('\n').slice(1).map((l) => l.split(/\s{2,}/)[0]), ['train-sft-seed1']);
  const none = gta(['runs', 'nowhere'], dir);
  assert.equal(none.code, 2);
  assert.equal(none.stderr.trim(), 'gta: error: nowhere: no such folder');
});
