/**
 * Data-parallel training over libtorch's c10d (src/parallel, native/dist.cc): two ranks on loopback take
 * the same steps as one process on the whole batch, a rank that dies stops the others with an error
 * naming it, and the run resumes exactly. Skipped when the torch addon was built without its process
 * group, unless GTA_TORCH_REQUIRED=1 (CI), where that is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadNative } from '../src/backend/torch/native.js';
import { isAdapter } from '../src/model/lora.js';
import { decodeSafetensors } from '../src/model/safetensors.js';
import { torchUnavailable } from './helpers/torch.js';
import { tmpDir } from './helpers/tiny.js';
import { GTA, tinyConfig } from './helpers/cli.js';

/** Why this machine cannot run data-parallel training (no addon, or one built without Gloo), or null. */
function distMissing(): string | null {
  const torch = torchUnavailable();
  if (torch) return torch;
  return (loadNative() as unknown as { distUnavailable?: string }).distUnavailable ?? null;
}
const missing = distMissing();
if (missing && process.env.GTA_TORCH_REQUIRED === '1') throw new Error(`GTA_TORCH_REQUIRED=1 but data-parallel training is unavailable: ${missing}`);
const opts = { skip: missing ?? false };

const STEPS = ['--set', 'train.steps=6', '--set', 'train.eval_every=3', '--set', 'train.log_every=1', '--set', 'train.checkpoint_every=3', '--set', 'eval.max_examples_during_training=20', '--log-level', 'warn'];
const GTA_MODE = ['--set', 'mode=gta', '--set', 'train.batch_size=16', '--set', 'rl.group_size=4', '--set', 'rl.think_max_tokens=2', '--set', 'model.max_seq_len=48'];

function train(dir: string, args: string[], env: Record<string, string> = {}) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [GTA, 'train', ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: 'true', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - t0) / 1000 };
}

/** metrics.jsonl without what differs from run to run (wall time, perf/*). */
const metrics = (run: string) =>
  fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => Object.fromEntries(Object.entries(JSON.parse(l)).filter(([k]) => k !== 'time_s' && !k.startsWith('perf/'))));

const weights = (run: string) => decodeSafetensors(fs.readFileSync(path.join(run, 'checkpoints', 'latest', 'model.safetensors')), 'model').tensors;

/** The largest difference between two runs' numeric metrics (same keys, same lines) and final weights. */
function differences(a: string, b: string): { metric: number; weight: number } {
  const [ma, mb] = [metrics(a), metrics(b)];
  assert.equal(ma.length, mb.length);
  let metric = 0;
  ma.forEach((line, i) => {
    assert.deepEqual(Object.keys(line).sort(), Object.keys(mb[i]).sort(), `line ${i + 1} has the same keys`);
    for (const [k, v] of Object.entries(line)) {
      if (typeof v === 'number') metric = Math.max(metric, Math.abs(v - (mb[i][k] as number)));
      else assert.deepEqual(v, mb[i][k], k);
    }
  });
  let weight = 0;
  const [wa, wb] = [weights(a), weights(b)];
  for (const [name, t] of wa) t.data.forEach((x, j) => (weight = Math.max(weight, Math.abs(x - wb.get(name)!.data[j]))));
  return { metric, weight };
}

for (const [mode, extra] of [['sft', []], ['gta', GTA_MODE]] as const) {
  test(`${mode}: two ranks on loopback, also in micro-batches, equal one process on the merged batch (losses, metrics and weights to 1e-5)`, opts, () => {
    const dir = tmpDir();
    const cfg = tinyConfig(dir);
    const one = train(dir, ['--config', cfg, ...extra, ...STEPS, '--run-dir', path.join(dir, 'one')]);
    assert.equal(one.code, 0, one.stderr);
    const two = train(dir, ['--config', cfg, ...extra, ...STEPS, '--run-dir', path.join(dir, 'two'), '--nproc', '2']);
    assert.equal(two.code, 0, two.stderr);
    assert.equal(two.stdout.split('\n')[0], path.join(dir, 'two'), 'rank 0 prints the run directory, as one process does');
    const d = differences(path.join(dir, 'one'), path.join(dir, 'two'));
    assert.ok(d.metric < 1e-5 && d.weight < 1e-5, JSON.stringify(d));
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'two', 'run.json'), 'utf8')).world_size, 2);
    // and each rank's shard in two micro-batches (train.grad_accum_steps)
    const accum = train(dir, ['--config', cfg, ...extra, ...STEPS, '--set', 'train.grad_accum_steps=2', '--run-dir', path.join(dir, 'accum'), '--nproc', '2']);
    assert.equal(accum.code, 0, accum.stderr);
    const da = differences(path.join(dir, 'one'), path.join(dir, 'accum'));
    assert.ok(da.metric < 1e-5 && da.weight < 1e-5, `grad_accum_steps 2: ${JSON.stringify(da)}`);
  });
}

test('gta with LoRA adapters: two ranks equal one process (metrics, adapters and weights to 1e-5)', opts, () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  const lora = [...GTA_MODE, ...STEPS, '--set', 'train.lora={r: 4, alpha: 8, target_modules: all-linear}'];
  for (const [run, nproc] of [['one', '1'], ['two', '2']]) {
    const r = train(dir, ['--config', cfg, ...lora, '--run-dir', path.join(dir, run), '--nproc', nproc]);
    assert.equal(r.code, 0, r.stderr);
  }
  const d = differences(path.join(dir, 'one'), path.join(dir, 'two'));
  assert.ok(d.metric < 1e-5 && d.weight < 1e-5, JSON.stringify(d));
  const [w1, w2] = [weights(path.join(dir, 'one')), weights(path.join(dir, 'two'))];
  const adapters = [...w1.keys()].filter(isAdapter);
  assert.ok(adapters.length > 0, 'the checkpoint holds the adapters');
  assert.ok(adapters.some((k) => k.endsWith('.B') && w2.get(k)!.data.some((x) => x !== 0)), 'the adapters trained (B moved from zero)');
});

test('a rank that dies stops the others at once with an error naming it; the run resumes exactly, with the same number of ranks only', opts, () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  const whole = train(dir, ['--config', cfg, ...STEPS, '--run-dir', path.join(dir, 'whole'), '--nproc', '2']);
  assert.equal(whole.code, 0, whole.stderr);
  // rank 1 kills itself inside its 5th step's optimizer update (after the step-3 checkpoint)
  const crashed = train(dir, ['--config', cfg, ...STEPS, '--run-dir', path.join(dir, 'run'), '--nproc', '2'], { GTA_CRASH_RANK: '1', GTA_CRASH_AT: 'optimizer:70' });
  assert.equal(crashed.code, 1);
  assert.match(crashed.stderr, /gta: error: rank 1 of 2 was killed by SIGKILL; the other ranks were stopped/);
  assert.ok(crashed.seconds < 30, `stopped in ${crashed.seconds} s`);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'run', 'run.json'), 'utf8')).status, 'failed', 'rank 0 marks the run failed, nothing looks finished');
  const other = train(dir, ['--resume', path.join(dir, 'run'), '--log-level', 'warn']);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /gta: error: .*checkpoints\/latest: saved by 2 ranks; resume it with --nproc 2/);
  const resumed = train(dir, ['--resume', path.join(dir, 'run'), '--nproc', '2', '--log-level', 'warn']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(metrics(path.join(dir, 'run')), metrics(path.join(dir, 'whole')));
});

test('--nproc: a batch that does not split over the ranks, or a bad count, is a one-line error', opts, () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  const odd = train(dir, ['--config', cfg, ...STEPS, '--set', 'train.batch_size=15', '--nproc', '2']);
  assert.equal(odd.code, 1);
  assert.match(odd.stderr, /train\.batch_size: 15 examples \(prompts in RL and GTA\) a step do not split over 2 ranks/);
  // batches of 16 over 25 examples: each epoch's short batch of 9 cannot split, found before step 1
  const short = train(dir, ['--config', cfg, ...STEPS, '--set', 'data.max_train_examples=25', '--run-dir', path.join(dir, 'short'), '--nproc', '2']);
  assert.equal(short.code, 1);
  assert.match(short.stderr, /the training split's 25 items leave one batch of 9 an epoch, which does not split over 2 ranks; set data\.max_train_examples/);
  assert.ok(!fs.existsSync(path.join(dir, 'short', 'checkpoints')), 'no step was taken');
  const zero = train(dir, ['--config', cfg, '--nproc', '0']);
  assert.equal(zero.code, 2);
  assert.match(zero.stderr, /^gta: error: --nproc must be a positive integer, got 0$/m);
});

test('the rank environment: torchrun variables, Slurm only where MASTER_ADDR says where to meet, bad values named', async () => {
  const { worldEnv } = await import('../src/parallel/world.js');
  assert.equal(worldEnv({}), null);
  assert.equal(worldEnv({ SLURM_PROCID: '1', SLURM_NTASKS: '4' }), null, 'a many-task Slurm allocation alone is not a data-parallel run');
  assert.deepEqual(worldEnv({ SLURM_PROCID: '1', SLURM_NTASKS: '4', MASTER_ADDR: 'node7', MASTER_PORT: '29600' }), { rank: 1, size: 4, host: 'node7', port: 29600 });
  assert.deepEqual(worldEnv({ RANK: '0', WORLD_SIZE: '2' }), { rank: 0, size: 2, host: '127.0.0.1', port: 29500 });
  assert.throws(() => worldEnv({ RANK: '2', WORLD_SIZE: '2' }), /RANK 2 is not below WORLD_SIZE 2/);
  assert.throws(() => worldEnv({ RANK: 'x', WORLD_SIZE: '2' }), /RANK must be an integer >= 0, got 'x'/);
});
