/**
 * train.precision bf16 (src/backend/torch/precision.ts, native/precision.cc): 50 steps of SFT and of
 * GTA on the shipped base model, same seed, track float32's losses; and where bf16 cannot run, a
 * one-line error before any run directory exists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tf from '../src/util/tfjs.cjs';
import type { BackendInfo } from '../src/backend/select.js';
import { cpuFlags } from '../src/backend/torch/native.js';
import { setPrecision, storeInBf16 } from '../src/backend/torch/precision.js';
import { OptimSchema } from '../src/config/schema.js';
import { Transformer } from '../src/model/transformer.js';
import { AdamW } from '../src/train/adamw.js';
import { gradDots } from '../src/backend/grad_dots.js';
import { Rng } from '../src/util/rng.js';
import { spawnSync } from 'node:child_process';
import { GTA, gta, ROOT, tinyConfig } from './helpers/cli.js';
import { tmpDir } from './helpers/tiny.js';
import { onTorch, torchUnavailable } from './helpers/torch.js';

const flags = cpuFlags();
const noBf16 = torchUnavailable() || (flags?.has('avx512_bf16') || flags?.has('amx_bf16') ? false : 'this CPU has neither AVX512-BF16 nor AMX-BF16');

/** The train lines' `key` of a `steps`-step run of `config` at `precision`. */
function losses(dir: string, config: string, precision: string, key: string, extra: string[], steps = 50): number[] {
  const runDir = path.join(dir, precision);
  const r = gta(['train', '--config', path.join(ROOT, config), '--backend', 'torch', '--log-level', 'warn', '--run-dir', runDir, '--set', `train.precision=${precision}`, '--set', `train.steps=${steps}`, '--set', 'train.log_every=1', '--set', 'train.eval_every=1000', '--set', 'data.max_eval_examples=16', '--set', `init=${path.join(ROOT, 'checkpoints', 'base')}`, ...extra.flatMap((s) => ['--set', s])], dir);
  assert.equal(r.code, 0, r.stderr);
  return metricLines(runDir)
    .filter((l) => l.split === 'train')
    .map((l) => l[key] as number);
}

function metricLines(runDir: string): Record<string, unknown>[] {
  return fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * How far bf16's curve is from float32's: per step |bf16 - fp32| / fp32 (its mean and largest), and
 * the mean |bf16 - fp32| over the run as a fraction of the first step's loss (`ofStart`).
 */
function track(t: { diagnostic: (m: string) => void }, what: string, fp32: number[], bf16: number[]): { mean: number; max: number; first10: number; ofStart: number } {
  assert.equal(bf16.length, fp32.length);
  const rel = fp32.map((x, i) => Math.abs(bf16[i] - x) / Math.abs(x));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const r = { mean: mean(rel), max: Math.max(...rel), first10: Math.max(...rel.slice(0, 10)), ofStart: mean(fp32.map((x, i) => Math.abs(bf16[i] - x))) / fp32[0] };
  t.diagnostic(`${what}: fp32 ${fp32[0].toFixed(4)} -> ${fp32.at(-1)!.toFixed(4)}, bf16 ${bf16[0].toFixed(4)} -> ${bf16.at(-1)!.toFixed(4)}; per step relative difference mean ${r.mean.toExponential(2)}, max ${r.max.toExponential(2)} (first 10 steps ${r.first10.toExponential(2)}); mean difference ${r.ofStart.toExponential(2)} of the first loss`);
  return r;
}

for (const precision of ['bf16', 'bf16-true']) {
  test(`${precision}: 50 SFT steps track float32's loss (mean relative difference <= 1%, every step <= 5%)`, { skip: noBf16 }, (t) => {
    const d = tmpDir();
    const extra = ['train.batch_size=16', 'train.dropout=0'];
    const r = track(t, 'sft train/loss_sft', losses(d, 'configs/sst2-sft.yaml', 'fp32', 'train/loss_sft', extra), losses(d, 'configs/sst2-sft.yaml', precision, 'train/loss_sft', extra));
    assert.ok(r.mean <= 0.01 && r.max <= 0.05, JSON.stringify(r));
  });
}

// GTA samples its completions, so where bf16 flips a sampled token the two runs part ways: the first
// steps must agree closely, the rest stay near in absolute terms
test("bf16: 50 GTA steps track float32's guess loss (first 10 steps <= 1% each; the mean difference <= 2% of the first loss)", { skip: noBf16 }, (t) => {
  const d = tmpDir();
  // (the default constraint's drop-or-keep flips on a cosine's sign, which bf16 rounding can flip: a step apart at once)
  const extra = ['train.batch_size=16', 'rl.group_size=4', 'gta.gradient_constraint=none'];
  const sft = track(t, 'gta train/loss_sft', losses(d, 'configs/sst2-gta.yaml', 'fp32', 'train/loss_sft', extra), losses(d, 'configs/sst2-gta.yaml', 'bf16', 'train/loss_sft', extra));
  assert.ok(sft.first10 <= 0.01 && sft.ofStart <= 0.02, JSON.stringify(sft));
});

test("bf16 with LoRA (the frozen base kept in bfloat16 alone): GTA from a Llama folder tracks float32's guess loss, checkpoints, and re-scores", { skip: noBf16 }, (t) => {
  const d = tmpDir();
  const extra = ['train.batch_size=16', 'rl.group_size=4', 'gta.gradient_constraint=none', `init=${path.join(ROOT, 'test', 'fixtures', 'hf', 'llama')}`, 'data.max_text_tokens=32', 'data.max_train_examples=64', 'train.lora={r: 4, target_modules: all-linear}'];
  const run = (precision: string) => losses(d, 'configs/sst2-gta.yaml', precision, 'train/loss_sft', extra, 10);
  const r = track(t, 'gta + lora train/loss_sft', run('fp32'), run('bf16'));
  assert.ok(r.first10 <= 0.01, JSON.stringify(r));
  // the checkpoint holds the base as float32 again (read back from bfloat16), and gta eval scores it
  const ev = gta(['eval', '--run', path.join(d, 'bf16'), '--log-level', 'warn'], d);
  assert.equal(ev.code, 0, ev.stderr);
});

test("bf16-true: GTA from a Llama folder tracks float32's guess loss; killed and resumed (bfloat16 weights and moments restored) it writes an uninterrupted run's metrics; gta eval repeats its dev score", { skip: noBf16 }, (t) => {
  const d = tmpDir();
  const extra = ['train.batch_size=16', 'rl.group_size=4', 'rl.beta=0.01', 'gta.gradient_constraint=none', `init=${path.join(ROOT, 'test', 'fixtures', 'hf', 'llama')}`, 'data.max_text_tokens=32', 'data.max_train_examples=64'];
  const r = track(t, 'gta train/loss_sft', losses(d, 'configs/sst2-gta.yaml', 'fp32', 'train/loss_sft', extra, 10), losses(d, 'configs/sst2-gta.yaml', 'bf16-true', 'train/loss_sft', extra, 10));
  assert.ok(r.first10 <= 0.01, JSON.stringify(r));
  // 4 steps, a checkpoint at 2, killed halfway through step 4's update (15 parameters a step), resumed
  const short = [...extra, 'train.steps=4', 'train.checkpoint_every=2', 'train.eval_every=2', 'train.log_every=1', 'data.max_eval_examples=16', 'train.precision=bf16-true'].flatMap((x) => ['--set', x]);
  const args = (runDir: string) => ['train', '--config', path.join(ROOT, 'configs/sst2-gta.yaml'), '--backend', 'torch', '--log-level', 'warn', '--run-dir', runDir, ...short];
  assert.equal(gta(args(path.join(d, 'whole')), d).code, 0);
  const crashed = spawnSync(process.execPath, [GTA, ...args(path.join(d, 'killed'))], { cwd: d, encoding: 'utf8', env: { ...process.env, GTA_CRASH_AT: 'optimizer:50' } });
  assert.equal(crashed.signal, 'SIGKILL', crashed.stderr);
  assert.equal(gta(['train', '--resume', path.join(d, 'killed'), '--log-level', 'warn'], d).code, 0);
  const lines = (dir: string) => metricLines(path.join(d, dir)).map((l) => Object.fromEntries(Object.entries(l).filter(([k]) => k !== 'time_s' && !k.startsWith('perf/'))));
  assert.deepEqual(lines('killed'), lines('whole'));
  const ev = gta(['eval', '--run', path.join(d, 'whole'), '--log-level', 'warn'], d);
  assert.equal(ev.code, 0, ev.stderr);
  const dev = lines('whole').filter((l) => l.split === 'dev').at(-1)!;
  const m = (k: string) => (dev[`eval/${k}`] as number).toFixed(4);
  assert.match(ev.stdout, new RegExp(`accuracy ${m('accuracy')}  f1_weighted ${m('f1_weighted')}  f1_macro ${m('f1_macro')}  generate_accuracy ${m('generate_accuracy')} `));
});

test("bf16-true's AdamW rounds stochastically: an update a quarter of a bfloat16 step moves the weights by it on average (nearest rounding would not move them), the same each time; the CPU loop and the ATen operators (a GPU's path)", { skip: noBf16 }, async () => {
  for (const aten of [false, true]) await stochasticUpdate(aten);
});

test('gradDots on bfloat16 tensors (bf16-true gradients, read without float32 copies) equals the sums in double, mixed with float32 too', { skip: noBf16 }, async () => {
  await onTorch(async () => {
    setPrecision('bf16-true', { name: 'torch', device: 'cpu' } as BackendInfo);
    try {
      const rng = new Rng(5);
      // more than one 65536-element chunk, a tail that is not a multiple of 16 lanes, and a small one
      const shapes = [[70001], [3, 5]];
      const make = () => shapes.map((s) => Transformer.variable('g', tf.tensor(Float32Array.from({ length: s.reduce((x, y) => x * y) }, () => rng.next() * 2 - 1), s)));
      const a = make(), b = make(), f = make();
      storeInBf16([...a, ...b]);
      const lowBits = (t: tf.Tensor) => new Uint32Array(Float32Array.from(t.dataSync()).buffer).some((u) => (u & 0xffff) !== 0);
      assert.ok(!lowBits(a[0]) && lowBits(f[0]), 'a held in bfloat16, f in float32');
      const sums = (x: tf.Tensor[], y: tf.Tensor[]) => {
        let ab = 0, aa = 0, bb = 0;
        x.forEach((t, i) => {
          const u = t.dataSync(), v = y[i].dataSync();
          for (let k = 0; k < u.length; k++) (ab += u[k] * v[k]), (aa += u[k] * u[k]), (bb += v[k] * v[k]);
        });
        return [ab, aa, bb];
      };
      const close = (got: number[], want: number[], what: string) => got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= 1e-5 * Math.abs(want[i]) + 1e-6, `${what}[${i}]: ${g} against ${want[i]}`));
      const both = gradDots(a, b);
      close([both.ab, both.aa, both.bb], sums(a, b), 'bf16 pair');
      const mixed = gradDots(a, f);
      close([mixed.ab, mixed.aa, mixed.bb], sums(a, f), 'bf16 with float32');
      assert.equal(gradDots(a).aa, both.aa, '|a|^2 alone equals |a|^2 of the pair');
      tf.dispose([...a, ...b, ...f]);
    } finally {
      setPrecision('fp32', { name: 'torch', device: 'cpu' } as BackendInfo);
    }
  });
});

async function stochasticUpdate(aten: boolean): Promise<void> {
  if (aten) process.env.GTA_ADAMW_ATEN = '1';
  await onTorch(async () => {
    setPrecision('bf16-true', { name: 'torch', device: 'cpu' } as BackendInfo);
    try {
      // gradG: float32 ones, or bfloat16 ones (an op on the bfloat16 weight, as a bf16-true backward gives)
      const update = (bf16Grad = false): Float32Array => {
        // weights 1.5 (a bfloat16 step is 2^-7 there); Adam's first step moves each by lr = 2^-9 against its gradient's sign
        const w = Transformer.variable('w', tf.fill([256, 256], 1.5));
        storeInBf16([w]);
        const opt = new AdamW(new Map([['w', w]]), OptimSchema.parse({ lr: 2 ** -9, weight_decay: 0 }));
        const g = bf16Grad ? tf.tidy(() => w.mul(0).add(1)) : tf.ones([256, 256]);
        opt.apply({ w: g }, 2 ** -9);
        const out = w.dataSync() as Float32Array;
        tf.dispose([w, g]);
        opt.dispose();
        return out;
      };
      const a = update();
      const mean = a.reduce((x, y) => x + y, 0) / a.length;
      // each weight goes to 1.5 - 2^-7 with probability 1/4: the mean 1.5 - 2^-9 within ~1% of the step (0.1 here)
      assert.ok(Math.abs(1.5 - mean - 2 ** -9) < 0.1 * 2 ** -9, `${aten ? 'ATen' : 'loop'}: mean change ${1.5 - mean}`);
      assert.ok(a.every((x) => x === 1.5 || x === 1.5 - 2 ** -7));
      assert.deepEqual(update(), a);
      assert.deepEqual(update(true), a, 'bfloat16 gradients read as they are: the same update');
    } finally {
      setPrecision('fp32', { name: 'torch', device: 'cpu' } as BackendInfo);
      delete process.env.GTA_ADAMW_ATEN;
    }
  });
}

test('train.precision bf16 where it cannot run is a one-line error naming the key, exit 2, no run directory', () => {
  const d = tmpDir();
  const r = gta(['train', '--config', tinyConfig(d), '--set', 'train.precision=bf16', '--log-level', 'warn'], d);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), 'gta: error: train.precision: bf16 runs on the torch backend (this run is on wasm); use fp32');
  assert.ok(!fs.existsSync(path.join(d, 'runs')) || fs.readdirSync(path.join(d, 'runs')).length === 0);
});
