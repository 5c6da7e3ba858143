/**
 * train.early_stopping and eval.final_checkpoint on a tiny run: the run stops after `patience` periodic
 * evals without a gain of more than min_delta, finishes as usual, and with final_checkpoint best the
 * final eval scores checkpoints/best (what `gta eval --checkpoint best` scores too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { TrainConfigSchema } from '../src/config/schema.js';
import { tmpDir } from './helpers/tiny.js';
import { gta, tinyConfig } from './helpers/cli.js';

test('early stopping ends the run after patience evals without gain; the final eval scores the best checkpoint', () => {
  const dir = tmpDir();
  // accuracy cannot rise by more than 1: every eval after the first is one without gain
  const r = gta(['train', '--config', tinyConfig(dir), '--set', 'eval.final_checkpoint=best', '--set', 'train.eval_every=10', '--set', 'train.early_stopping={patience: 2, min_delta: 1}', '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  const lines = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  // periodic evals at 10, 20, 30 (the second without gain stops it), then the final eval at step 30
  assert.deepEqual(lines.filter((l) => l.split === 'dev').map((l) => l.step), [10, 20, 30, 30]);
  const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
  assert.equal(summary.status, 'finished');
  assert.equal(summary.steps, 30);
  const bestStep = summary.best_during_training.step;
  assert.deepEqual(summary.stopped_early, { step: 30, best_step: bestStep, patience: 2, min_delta: 1 });
  assert.equal(summary.final.checkpoint, bestStep === 30 ? 'latest' : 'best');
  assert.equal(summary.final.checkpoint_step, bestStep);
  const e = gta(['eval', '--run', runDir, '--checkpoint', 'best', '--log-level', 'warn'], dir);
  assert.equal(e.code, 0, e.stderr);
  const ev = JSON.parse(fs.readFileSync(path.join(runDir, 'eval-dev-best.json'), 'utf8'));
  assert.equal(ev.step, bestStep);
  assert.equal(ev.accuracy, summary.final.accuracy);
  assert.equal(ev.f1_macro, summary.final.f1_macro);
});

test('final_checkpoint best needs the best checkpoint kept; early_stopping needs a patience', () => {
  const dir = tmpDir();
  const f = tinyConfig(dir);
  assert.throws(
    () => loadConfig(TrainConfigSchema, f, ['eval.final_checkpoint=best', 'train.keep_checkpoints=[latest]']),
    (e: Error) => e.message === "--set eval.final_checkpoint: eval.final_checkpoint: eval.final_checkpoint 'best' scores checkpoints/best, which train.keep_checkpoints does not keep; add best to it or use 'latest'",
  );
  assert.throws(() => loadConfig(TrainConfigSchema, f, ['train.early_stopping={min_delta: 0.01}']), /train\.early_stopping\.patience: required number is missing/);
  const { config } = loadConfig(TrainConfigSchema, f, ['train.early_stopping={patience: 3}']);
  assert.deepEqual(config.train.early_stopping, { patience: 3, min_delta: 0 });
  assert.equal(config.eval.final_checkpoint, 'latest');
});
