/**
 * Memory of a training step without changing its numbers: the backward that frees as it goes
 * (src/backend/lean_grads.ts) against tf.variableGrads, AdamW in place (src/backend/torch/in_place.ts)
 * against the new-tensor update, and what in place must never touch (a frozen copy, a clone).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import tf from '../src/util/tfjs.cjs';
import { initBackend } from '../src/backend/select.js';
import { variableGrads } from '../src/backend/lean_grads.js';
import { loadedNative } from '../src/backend/torch/native.js';
import { buildInput, disposeInput, targetPositions } from '../src/model/batch.js';
import { loadInitial } from '../src/model/init.js';
import type { Transformer } from '../src/model/transformer.js';
import { AdamW } from '../src/train/adamw.js';
import { lossAtRows } from '../src/train/sft.js';
import { combineGradients, disposeUnused } from '../src/train/grad_constraint.js';
import { repoRoot } from '../src/util/paths.js';
import { torchUnavailable } from './helpers/torch.js';
import { useWasm } from './helpers/tiny.js';

const torchSkip = torchUnavailable();
const OPTIM = { lr: 1e-2, weight_decay: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant' as const, min_lr_ratio: 1, grad_clip: 1 };

/** The tiny Qwen3 fixture (tied embedding, q/k norms, grouped-query attention) and an SFT loss on two sequences. */
function fixture(): { model: Transformer; loss: () => tf.Scalar; dispose: () => void } {
  const { model, tokenizer } = loadInitial(path.join(repoRoot(), 'test', 'fixtures', 'hf', 'qwen3'), 1);
  const seqs = [tokenizer.encode('the movie was good'), tokenizer.encode("dull, isn't it? café 42")];
  const { input, layout } = buildInput(seqs, tokenizer.padId);
  const { rows, targets } = targetPositions(seqs, [2, 3], layout);
  return { model, loss: () => lossAtRows(model, model.forward(input).hidden, rows, targets), dispose: () => (disposeInput(input), model.dispose()) };
}

function values(grads: tf.NamedTensorMap): Map<string, Float32Array> {
  return new Map(Object.entries(grads).map(([k, g]) => [k, g.dataSync() as Float32Array]));
}

for (const backend of ['wasm', 'torch'] as const) {
  test(`${backend}: the freeing backward gives tf.variableGrads's gradients exactly`, { skip: backend === 'torch' && torchSkip }, async () => {
    if (backend === 'wasm') await useWasm();
    else await initBackend('torch');
    const f = fixture();
    const before = tf.memory().numTensors;
    const lean = variableGrads(f.loss);
    const ref = tf.variableGrads(f.loss);
    try {
      assert.equal(lean.value.dataSync()[0], ref.value.dataSync()[0]);
      const [a, b] = [values(lean.grads), values(ref.grads)];
      assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
      for (const [k, v] of a) assert.deepEqual(v, b.get(k), k);
    } finally {
      tf.dispose([lean.value, ref.value, ...Object.values(lean.grads), ...Object.values(ref.grads)]);
    }
    // nothing left behind: not a saved tensor, not an intermediate gradient
    assert.equal(tf.memory().numTensors, before);
    f.dispose();
  });
}

test('torch: the freeing backward holds less at its peak than tf.variableGrads', { skip: torchSkip }, async () => {
  await initBackend('torch');
  const native = loadedNative()!;
  const f = fixture();
  const peak = (grads: typeof variableGrads) => {
    native.memory!(true);
    const r = grads(f.loss);
    const p = native.memory!().peak;
    tf.dispose([r.value, ...Object.values(r.grads)]);
    return p;
  };
  const lean = peak(variableGrads);
  const ref = peak(tf.variableGrads);
  assert.ok(lean < ref, `peak ${lean} bytes against tf.variableGrads's ${ref}`);
  f.dispose();
});

test('torch: AdamW in place equals the new-tensor update, holds no second copy, and leaves a frozen copy and a clone alone', { skip: torchSkip }, async () => {
  await initBackend('torch');
  const native = loadedNative()!;
  const a = fixture();
  const b = fixture();
  const frozen = a.model.frozenCopy();
  const initial = new Map([...frozen.params].map(([k, v]) => [k, v.dataSync().slice()]));
  // a clone shares its parameter's data: b's parameters must then be updated as new tensors
  const clones = [...b.model.params.values()].map((p) => p.clone());
  const optA = new AdamW(a.model.params, OPTIM);
  const optB = new AdamW(b.model.params, OPTIM);
  for (let step = 0; step < 2; step++) {
    const ga = a.model.byParamName(variableGrads(a.loss).grads);
    const gb = b.model.byParamName(variableGrads(b.loss).grads);
    const live = native.memory!(true).live;
    optA.apply(ga, 1e-2);
    // in place: nothing beyond what was alive (the gradients, weights and moments)
    assert.equal(native.memory!().peak, live, 'AdamW in place allocated');
    optB.apply(gb, 1e-2);
    tf.dispose([...Object.values(ga), ...Object.values(gb)]);
  }
  for (const [k, p] of a.model.params) assert.deepEqual(p.dataSync(), b.model.params.get(k)!.dataSync(), k);
  const sa = optA.state().arrays;
  for (const [k, x] of optB.state().arrays) assert.deepEqual(sa.get(k)!.read(), x.read(), k);
  // the frozen copy still holds the initial weights, the clones the values they were cloned at
  for (const [k, v] of frozen.params) assert.deepEqual(v.dataSync(), initial.get(k), `frozen ${k}`);
  [...b.model.params.keys()].forEach((k, i) => assert.deepEqual(clones[i].dataSync(), initial.get(k), `clone of ${k}`));
  tf.dispose(clones);
  frozen.dispose();
  optA.dispose();
  optB.dispose();
  a.dispose();
  b.dispose();
});

test('torch: GTA\'s combined gradient written into the SFT gradient equals the new-tensor combination', { skip: torchSkip }, async () => {
  await initBackend('torch');
  const shapes = [[3, 5], [7]];
  const make = (seed: number) => Object.fromEntries(shapes.map((s, i) => [`p${i}`, tf.randomNormal(s, 0, 1, 'float32', seed + i)]));
  for (const rule of ['none', 'drop_sft_on_conflict', 'pcgrad'] as const) {
    const [sft, rl, sftShared, rlShared] = [make(1), make(5), make(1), make(5)];
    // a clone shares each tensor's data, so this set is combined into new tensors
    const clones = Object.values(sftShared).map((t) => t.clone());
    const opts = { lambdaSft: 0.7, lambdaRl: 1.3, rule };
    const a = combineGradients(sft, rl, opts);
    const b = combineGradients(sftShared, rlShared, opts);
    assert.equal(a.grads.p0, sft.p0, 'written into gSft');
    assert.notEqual(b.grads.p0, sftShared.p0, 'a new tensor');
    for (const k of Object.keys(a.grads)) assert.deepEqual(a.grads[k].dataSync(), b.grads[k].dataSync(), `${rule} ${k}`);
    disposeUnused(sft, a.grads);
    disposeUnused(sftShared, b.grads);
    tf.dispose([...Object.values(a.grads), ...Object.values(b.grads), ...Object.values(rl), ...Object.values(rlShared), ...clones]);
  }
});
