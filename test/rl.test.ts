/**
 * RL (GRPO) and GTA end to end on the tiny synthetic task: mean reward and answer accuracy must rise
 * within a small seeded budget, and the run must log the metrics the method is judged by.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers/tiny.js';
import { gta, tinyConfig } from './helpers/cli.js';

const COMMON = ['--set', 'train.steps=100', '--set', 'train.batch_size=32', '--set', 'rl.group_size=8', '--set', 'rl.think_max_tokens=2', '--set', 'train.eval_every=25', '--set', 'train.log_every=5', '--set', 'model.max_seq_len=48', '--log-level', 'warn'];

/** Trains on the tiny task with COMMON and `args`; returns the run directory and its train and dev metrics. */
function runTiny(args: string[]) {
  const dir = tmpDir();
  const r = gta(['train', '--config', tinyConfig(dir), ...COMMON, ...args], dir);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  const lines = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return { runDir, train: lines.filter((l) => l.split === 'train'), dev: lines.filter((l) => l.split === 'dev') };
}

const runMode = (mode: 'rl' | 'gta') => runTiny(['--set', `mode=${mode}`]);

test('RL: mean reward and dev accuracy rise; GRPO metrics are logged', () => {
  const { runDir, train, dev } = runMode('rl');
  for (const k of ['train/loss_rl', 'reward/accuracy/mean', 'reward/format/mean', 'reward/frac_zero_std', 'completions/mean_length', 'completions/clipped_ratio', 'kl', 'clip_ratio', 'entropy', 'perf/rollout_tokens_per_s']) {
    assert.ok(k in train[0], `missing ${k}`);
  }
  const first = (train[0]['reward/accuracy/mean'] + train[1]['reward/accuracy/mean']) / 2;
  const last = (train[train.length - 1]['reward/accuracy/mean'] + train[train.length - 2]['reward/accuracy/mean']) / 2;
  assert.ok(last > first + 0.1, `reward ${first} -> ${last}`);
  const final = dev[dev.length - 1];
  assert.ok(final['eval/accuracy'] >= 0.75, `dev accuracy ${final['eval/accuracy']}`);
  assert.equal(final['eval/format_valid_rate'], 1, 'structured decoding always yields the format');
  assert.ok(fs.readFileSync(path.join(runDir, 'samples.jsonl'), 'utf8').includes('<answer>'));
});

test('GTA: answer accuracy rises, the guess is learned, and the constraint is logged', () => {
  const { train, dev } = runMode('gta');
  for (const k of ['train/loss_sft', 'train/loss_rl', 'grad/cos_sft_rl', 'grad/conflict', 'grad/conflict_rate']) assert.ok(k in train[0], `missing ${k}`);
  assert.ok(train[train.length - 1]['train/loss_sft'] < train[0]['train/loss_sft'], 'guess cross-entropy falls');
  const final = dev[dev.length - 1];
  assert.ok(final['eval/accuracy'] >= 0.65 && final['eval/accuracy'] > dev[0]['eval/accuracy'], `dev accuracy ${dev.map((d) => d['eval/accuracy'])}`);
  assert.ok(final['eval/guess_accuracy'] >= 0.65, `guess accuracy ${final['eval/guess_accuracy']}`);
  for (const k of ['eval/revision_rate', 'eval/revisions_fixed', 'eval/revisions_broke']) assert.ok(k in final, `missing ${k}`);
});

test('a batch that the group size does not divide is rejected with both numbers', () => {
  const dir = tmpDir();
  const r = gta(['train', '--config', tinyConfig(dir), '--set', 'mode=rl', '--set', 'train.batch_size=30', '--set', 'rl.group_size=8'], dir);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /train\.batch_size 30 is not a multiple of rl\.group_size 8/);
});

/** runTiny with a metrics line every step. */
const trainLines = (args: string[]) => runTiny(['--set', 'train.log_every=1', ...args]);

test('GRPO options: KL to a frozen reference, several updates per batch, clip-higher, dr_grpo, PCGrad', () => {
  const { train } = trainLines(['--set', 'mode=gta', '--set', 'train.steps=6', '--set', 'rl.beta=0.1', '--set', 'rl.num_iterations=2', '--set', 'rl.loss_type=dr_grpo',
    '--set', 'rl.scale_rewards=batch', '--set', 'rl.epsilon_high=0.28', '--set', 'gta.gradient_constraint=pcgrad']);
  assert.equal(train.length, 6);
  // kl is logged from the last of the two updates: after one step away from the reference
  assert.ok(train[0].kl > 0 && train[5].kl > train[0].kl, `kl ${train.map((t) => t.kl)}`);
  assert.ok(train.every((t) => Number.isFinite(t['train/loss_rl']) && t.clip_ratio >= 0));
});

test('free decoding: completions stop at the length bound, and truncated ones can be masked', () => {
  const { runDir, train } = trainLines(['--set', 'mode=rl', '--set', 'train.steps=4', '--set', 'rl.decoding=free', '--set', 'rl.max_completion_tokens=10', '--set', 'rl.mask_truncated_completions=true']);
  assert.ok(train.every((t) => t['completions/mean_length'] <= 10));
  assert.ok(train.some((t) => t['completions/clipped_ratio'] > 0));
  const summary = JSON.parse(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
  assert.ok('format_valid_rate' in summary.final);
});

test('sft_then_rl: SFT on the RL format for sft_steps, then GRPO from there', () => {
  const { train, dev } = trainLines(['--set', 'mode=sft_then_rl', '--set', 'sft_then_rl.sft_steps=20', '--set', 'train.steps=30', '--set', 'train.eval_every=10']);
  const sft = train.filter((l) => l.step <= 20);
  const rl = train.filter((l) => l.step > 20);
  assert.equal(sft.length, 20);
  assert.ok(sft.every((l) => 'train/loss_sft' in l && !('reward/total/mean' in l)));
  assert.ok(rl.length === 10 && rl.every((l) => 'reward/total/mean' in l && !('train/loss_sft' in l)));
  assert.ok(sft[19]['train/loss_sft'] < sft[0]['train/loss_sft'], 'the SFT phase learns');
  // GRPO starts from the SFT weights in the RL format: every completion well formed (structured decoding) and scored
  assert.ok(rl.every((l) => l['reward/format/mean'] === 1 && l['reward/accuracy/mean'] >= 0 && l['reward/accuracy/mean'] <= 1), JSON.stringify(rl.map((l) => l['reward/accuracy/mean'])));
  assert.ok(dev.length >= 3 && 'eval/format_valid_rate' in dev[dev.length - 1]);
});
