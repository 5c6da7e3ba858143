/**
 * The torch backend against wasm: one training step gives the same loss, gradients and updated
 * parameters (1e-4), and each fused kernel gives its composite's value and gradient. Skipped with the
 * reason when the libtorch addon was not built; .ci/run sets GTA_TORCH_REQUIRED=1 so CI fails instead.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import tf from '../src/util/tfjs.cjs';
import { adamwUpdate, attention, dropoutMask, layerNorm, linearCombination, tokenLogProbs } from '../src/backend/fused.js';
import { gradDots } from '../src/backend/grad_dots.js';
import { initBackend } from '../src/backend/select.js';
import { loadNative } from '../src/backend/torch/native.js';
import { AdamW } from '../src/train/adamw.js';
import { sftGrads, type SftExample } from '../src/train/sft.js';
import { Rng } from '../src/util/rng.js';
import { maxAbsDiff, tinyModel, tinyTokenizer } from './helpers/tiny.js';
import { torchUnavailable } from './helpers/torch.js';
import { withEnv } from './helpers/env.js';

const skip = torchUnavailable();

/** Runs `f` on each backend (fresh tensors each time) and returns its numbers per backend. */
async function onBoth<T>(f: () => T): Promise<{ wasm: T; torch: T }> {
  await initBackend('wasm');
  const wasm = f();
  await initBackend('torch');
  const torch = f();
  await tf.setBackend('wasm');
  return { wasm, torch };
}

/** Largest difference relative to max(1, |value|), over every named array. */
function worst(a: Record<string, ArrayLike<number>>, b: Record<string, ArrayLike<number>>): { name: string; diff: number } {
  let out = { name: '', diff: 0 };
  for (const name of Object.keys(a)) {
    const scale = Math.max(1, ...Array.from(a[name], Math.abs));
    const d = maxAbsDiff(a[name], b[name]) / scale;
    if (!(d <= out.diff)) out = { name, diff: d };
  }
  return out;
}

function batch(tok: ReturnType<typeof tinyTokenizer>): SftExample[] {
  const texts = ['good movie', 'the plot was very bad', 'a great film', 'awful'];
  return texts.map((t, i) => ({ prompt: tok.encode(t), target: [...tok.encode(i % 2 ? 'no' : 'yes'), tok.eosId] }));
}

test('one SFT step on torch matches wasm: loss, gradients and updated parameters', { skip }, async () => {
  const tok = tinyTokenizer();
  const { wasm, torch } = await onBoth(() => {
    const model = tinyModel(tok, 5);
    const opt = new AdamW(model.params, { lr: 1e-2, weight_decay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant', min_lr_ratio: 1, grad_clip: 0.5 });
    const { loss, grads } = sftGrads(model, batch(tok), tok.padId, { dropout: 0 });
    const g = Object.fromEntries(Object.entries(grads).map(([k, t]) => [k, t.dataSync().slice()]));
    opt.apply(grads, 1e-2);
    tf.dispose(Object.values(grads));
    const p = Object.fromEntries([...model.params].map(([k, v]) => [k, v.dataSync().slice()]));
    opt.dispose();
    model.dispose();
    return { loss, g, p };
  });
  assert.ok(Math.abs(wasm.loss - torch.loss) < 1e-4, `loss ${wasm.loss} vs ${torch.loss}`);
  assert.equal(Object.keys(torch.g).length, Object.keys(wasm.g).length);
  const g = worst(wasm.g, torch.g);
  assert.ok(g.diff < 1e-4, `gradient of ${g.name} differs by ${g.diff}`);
  const p = worst(wasm.p, torch.p);
  assert.ok(p.diff < 1e-4, `updated ${p.name} differs by ${p.diff}`);
});

test('fused kernels on torch equal their composites on wasm, value and gradient', { skip }, async () => {
  const rng = new Rng(11);
  const values = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
  const x = values(2 * 3 * 8);
  const gain = values(8);
  const bias = values(8);
  const dy = values(2 * 3 * 8);
  const [qv, kv, vv, av] = [0, 1, 2, 3].map(() => values(2 * 2 * 4 * 3));
  // causal, with the first key hidden from row 0 of batch 1 (a left-padding position)
  const biasValues = Float32Array.from({ length: 2 * 4 * 4 }, (_, i) => {
    const [bb, r, c] = [Math.floor(i / 16), Math.floor(i / 4) % 4, i % 4];
    return c > r || (bb === 1 && c === 0 && r > 0) ? -1e9 : 0;
  });
  const { wasm, torch } = await onBoth(() => {
    const xs = [tf.tensor3d(x, [2, 3, 8]), tf.tensor1d(gain), tf.tensor1d(bias)];
    const upstream = tf.tensor3d(dy, [2, 3, 8]);
    const { value: lnv, grads: lng } = tf.valueAndGrads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(layerNorm(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5), upstream)))(xs);
    const relu = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.relu(a), upstream)))(xs[0]);
    const soft = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.softmax(a, -1), upstream)))(xs[0]);
    const [q, k, v, up] = [qv, kv, vv, av].map((a) => tf.tensor4d(a, [2, 2, 4, 3]));
    const attnBias = tf.tensor4d(biasValues, [2, 1, 4, 4]);
    const attn: Record<string, Float32Array> = {};
    for (const mask of [undefined, dropoutMask([2, 2, 4, 4], 0.3, 9)]) {
      const tag = mask ? 'attnDropout' : 'attn';
      const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, attnBias, 0.5, mask), up)))([q, k, v]);
      attn[tag] = value.dataSync() as Float32Array;
      grads.forEach((g, i) => (attn[`${tag}Grad${'qkv'[i]}`] = g.dataSync() as Float32Array));
      tf.dispose([value, ...grads, ...(mask ? [mask] : [])]);
    }
    tf.dispose([q, k, v, up, attnBias]);
    const out = {
      ...attn,
      ln: Float32Array.of(lnv.dataSync()[0]),
      lnGradX: lng[0].dataSync().slice(),
      lnGradG: lng[1].dataSync().slice(),
      lnGradB: lng[2].dataSync().slice(),
      reluGrad: relu.dataSync().slice(),
      softmaxGrad: soft.dataSync().slice(),
    };
    tf.dispose([...xs, upstream, lnv, ...lng, relu, soft]);
    return out;
  });
  const d = worst(wasm, torch);
  assert.ok(d.diff < 1e-4, `${d.name} differs by ${d.diff}`);
});

test('token log-probabilities on torch equal the composite: value, gradient and entropy, plain and restricted at a temperature, own loops and ATen', { skip }, async () => {
  const rng = new Rng(13);
  for (const V of [50, 64]) {
    const N = 7;
    const logits = Float32Array.from({ length: N * V }, () => rng.next() * 8 - 4);
    // bias row 0 allows everything; row 1 a few tokens (the targets of the rows that use it among them)
    const allowed = new Set([1, 5, 17, V - 1]);
    const biasRows = Float32Array.from({ length: 2 * V }, (_, i) => (i < V || allowed.has(i - V) ? 0 : -1e9));
    const biasIndex = Int32Array.from({ length: N }, (_, i) => i % 2);
    const targets = Int32Array.from({ length: N }, (_, i) => (i % 2 ? [...allowed][i % 4] : rng.int(V)));
    const weights = Float32Array.from({ length: N }, (_, i) => i - 2.5);
    const run = () => {
      const out: Record<string, Float32Array> = {};
      for (const restricted of [false, true]) {
        tf.tidy(() => {
          const l = tf.tensor2d(logits, [N, V]);
          const t = tf.tensor1d(targets, 'int32');
          const opts = restricted ? { temperature: 0.7, bias: { rows: tf.tensor2d(biasRows, [2, V]), index: tf.tensor1d(biasIndex, 'int32') }, entropy: true } : {};
          // a weighted sum so every row gets a different upstream gradient
          const { value, grads } = tf.valueAndGrads((a: tf.Tensor) => tf.sum(tf.mul(tokenLogProbs(a as tf.Tensor2D, t, opts).logp, tf.tensor1d(weights))))([l]);
          const tag = restricted ? 'restricted' : 'plain';
          out[`${tag}Value`] = value.dataSync() as Float32Array;
          out[`${tag}Grad`] = grads[0].dataSync() as Float32Array;
          if (restricted) out.entropy = tokenLogProbs(l, t, opts).entropy!.dataSync() as Float32Array;
        });
      }
      return out;
    };
    const { wasm, torch } = await onBoth(run);
    await initBackend('torch');
    const aten = withEnv('GTA_NO_AVX512', '1', run);
    await tf.setBackend('wasm');
    for (const [name, got] of [['own loops (AVX-512, where the CPU has it)', torch], ['ATen ops', aten]] as const) {
      const d = worst(wasm, got);
      assert.ok(d.diff < 1e-5, `V ${V}, ${name}: ${d.name} differs by ${d.diff}`);
    }
    // restricted tokens get exactly zero gradient
    const g = torch.restrictedGrad;
    for (let i = 1; i < N; i += 2) for (let j = 0; j < V; j++) if (!allowed.has(j)) assert.ok(g[i * V + j] === 0, `row ${i} token ${j}: ${g[i * V + j]}`);
  }
});

test('fused AdamW on torch equals the composite update, with and without decay and clipping', { skip }, async () => {
  const rng = new Rng(12);
  const shapes = [[4, 3], [3], [2, 2, 2]];
  const init = shapes.map((s) => Array.from({ length: 4 }, () => Float32Array.from({ length: s.reduce((a, b) => a * b) }, () => rng.next() * 2 - 1)));
  const { wasm, torch } = await onBoth(() => {
    const [p, g, m, v] = [0, 1, 2, 3].map((j) => shapes.map((s, i) => tf.tensor(j === 3 ? init[i][j].map(Math.abs) : init[i][j], s)));
    const out = adamwUpdate(p, g, m, v, [true, false, true], { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, bc1: 0.19, bc2: 0.0199, scale: 0.5 });
    const r: Record<string, Float32Array> = {};
    (['p', 'm', 'v'] as const).forEach((k) => out[k].forEach((t, i) => (r[`${k}${i}`] = t.dataSync() as Float32Array)));
    tf.dispose([...p, ...g, ...m, ...v, ...out.p, ...out.m, ...out.v]);
    return r;
  });
  const d = worst(wasm, torch);
  assert.ok(d.diff < 1e-5, `${d.name} differs by ${d.diff}`);
});

test('gradient-set dot products and the linear combination on torch equal their composites on wasm', { skip }, async () => {
  const rng = new Rng(13);
  const shapes = [[4, 3], [3], [2, 2, 2]];
  const init = shapes.map((s) => [0, 1].map(() => Float32Array.from({ length: s.reduce((a, b) => a * b) }, () => rng.next() * 2 - 1)));
  const { wasm, torch } = await onBoth(() => {
    const [a, b] = [0, 1].map((j) => shapes.map((s, i) => tf.tensor(init[i][j], s)));
    const both = gradDots(a, b);
    const self = gradDots(a);
    const out = linearCombination(a, b, 0.7, -1.3);
    const r: Record<string, ArrayLike<number>> = { dots: [both.ab, both.aa, both.bb], self: [self.ab, self.aa, self.bb] };
    out.forEach((t, i) => (r[`c${i}`] = t.dataSync()));
    tf.dispose([...a, ...b, ...out]);
    return r;
  });
  assert.equal(torch.self[0], torch.dots[1], '|a|² alone equals |a|² of the pair');
  assert.ok(Math.abs(torch.dots[0]) > 0.1, 'a real dot product');
  const d = worst(wasm, torch);
  assert.ok(d.diff < 1e-5, `${d.name} differs by ${d.diff}`);
  await initBackend('torch');
  assert.throws(() => gradDots([tf.zeros([2])], [tf.zeros([3])]), /gradDots: tensor 0 has shape \[2\] against \[3\]/);
  await tf.setBackend('wasm');
});

test('the torch backend leaks no tensors over a training step', { skip }, async () => {
  const tok = tinyTokenizer();
  await initBackend('torch');
  const native = loadNative();
  const model = tinyModel(tok, 5);
  const opt = new AdamW(model.params, { lr: 1e-2, weight_decay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant', min_lr_ratio: 1, grad_clip: 0.5 });
  const step = () => {
    const { grads } = sftGrads(model, batch(tok), tok.padId, { dropout: 0.1, rng: new Rng(1) });
    opt.apply(grads, 1e-2);
    tf.dispose(Object.values(grads));
  };
  step();
  const [tensors, live] = [tf.memory().numTensors, native.liveTensors()];
  step();
  step();
  assert.equal(tf.memory().numTensors, tensors, 'tfjs tensors');
  assert.equal(native.liveTensors(), live, 'addon tensors');
  opt.dispose();
  model.dispose();
  await tf.setBackend('wasm');
});

