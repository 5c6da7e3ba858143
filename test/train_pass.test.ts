/**
 * The fused native training pass (native/train_pass.cc, used by Transformer.forward and forwardShared
 * on the torch backend): its hidden states equal the tfjs path's (GTA_NATIVE_PASS=0), and so does
 * every weight's gradient of a loss through them, for whole sequences (with and without dropout) and for completions after
 * prompts shared by groups of 1 and 4 rows, on a seeded tiny model and on checkpoints/base; so do a
 * prefill's keys and values; a pass with no gradient recorded keeps nothing in the addon; a bad handle
 * is refused. Skipped with the reason
 * when the libtorch addon was not built.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import test from 'node:test';
import tf from '../src/util/tfjs.cjs';
import { initBackend } from '../src/backend/select.js';
import { loadNative } from '../src/backend/torch/native.js';
import { passStats } from '../src/backend/torch/train_pass.js';
import { buildContinuation, buildInput, disposeInput } from '../src/model/batch.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { Transformer, type ModelInput } from '../src/model/transformer.js';
import { repoRoot } from '../src/util/paths.js';
import { Rng } from '../src/util/rng.js';
import { maxAbsDiff, TINY_ARCH } from './helpers/tiny.js';
import { withEnv } from './helpers/env.js';
import { torchUnavailable } from './helpers/torch.js';

const skip = torchUnavailable();
const BASE = path.join(repoRoot(), 'checkpoints', 'base');

const withNativePass = <T>(value: string | undefined, f: () => T): T => withEnv('GTA_NATIVE_PASS', value, f);

function randomSeqs(rng: Rng, lengths: number[], V: number): number[][] {
  return lengths.map((n) => Array.from({ length: n }, () => 3 + rng.int(V - 3)));
}

/**
 * The hidden states of `pass` and every weight's gradient of sum(hidden * R) (R fixed random), with
 * the native pass on or off; R goes through the tied head too (logits of the hidden states), so the
 * embedding's two gradients meet as in training.
 */
function hiddenAndGrads(model: Transformer, pass: () => tf.Tensor, native: boolean): { hidden: Float32Array; grads: Record<string, Float32Array> } {
  return withNativePass(native ? undefined : '0', () => {
    const before = passStats.backward;
    let hidden: Float32Array = new Float32Array(0);
    const { value, grads } = tf.variableGrads(() => {
      const h = pass();
      hidden = h.dataSync() as Float32Array;
      const d = h.shape[h.shape.length - 1];
      const rows = tf.reshape(h, [-1, d]) as tf.Tensor2D;
      const r = tf.randomNormal(rows.shape, 0, 1, 'float32', 5);
      const logits = model.logits(rows);
      return tf.add(tf.sum(tf.mul(rows, r)), tf.mul(tf.sum(tf.mul(logits, tf.randomNormal(logits.shape, 0, 1, 'float32', 6))), 0.1)) as tf.Scalar;
    });
    assert.equal(passStats.backward - before, native ? 1 : 0, native ? 'the fused backward ran once' : 'the tfjs path ran');
    value.dispose();
    const out: Record<string, Float32Array> = {};
    for (const [name, g] of Object.entries(model.byParamName(grads))) out[name] = g.dataSync() as Float32Array;
    tf.dispose(Object.values(grads));
    return { hidden, grads: out };
  });
}

/** Largest |a - b| relative to the largest |b| (1 when b is all zeros). */
function relDiff(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  for (const x of b) scale = Math.max(scale, Math.abs(x));
  return maxAbsDiff(a, b) / Math.max(scale, 1e-12);
}

function compare(model: Transformer, pass: () => tf.Tensor, what: string): void {
  const fused = hiddenAndGrads(model, pass, true);
  const plain = hiddenAndGrads(model, pass, false);
  assert.ok(maxAbsDiff(fused.hidden, plain.hidden) <= 1e-5, `${what}: hidden states differ by ${maxAbsDiff(fused.hidden, plain.hidden)}`);
  assert.deepEqual(Object.keys(fused.grads).sort(), [...model.params.keys()].sort(), `${what}: a gradient for every weight`);
  for (const [name, g] of Object.entries(plain.grads)) {
    const r = relDiff(fused.grads[name], g);
    assert.ok(r <= 1e-4, `${what}: gradient of ${name} differs by ${r} (relative)`);
  }
}

function models(): { name: string; model: Transformer }[] {
  return [
    { name: 'tiny', model: Transformer.init(TINY_ARCH, 7) },
    { name: 'checkpoints/base', model: loadCheckpoint(BASE).model },
  ];
}

test('the fused pass gives the tfjs path\'s hidden states and gradients (whole sequences, shared prompts in groups of 1 and 4)', { skip }, async () => {
  await initBackend('torch');
  for (const { name, model } of models()) {
    const V = model.arch.vocab_size;
    const rng = new Rng(11);
    const seqs = randomSeqs(rng, [9, 4, 12, 1], V);
    const { input } = buildInput(seqs, 0);
    compare(model, () => model.forward(input).hidden, `${name}, forward`);
    // dropout: the same masks from the same seeds (a fresh stream for each path)
    compare(model, () => model.forward(input, { dropout: 0.2, rng: new Rng(9) }).hidden, `${name}, forward with dropout`);
    disposeInput(input);
    for (const group of [1, 4]) {
      const prompts = randomSeqs(rng, [6, 10, 3], V);
      const conts = randomSeqs(rng, Array.from({ length: prompts.length * group }, (_, i) => 1 + (i * 5) % 7), V);
      const c = buildContinuation(prompts, conts, group, 0);
      compare(model, () => model.forwardShared(c.prompt, c.completion, group), `${name}, forwardShared group ${group}`);
      disposeInput(c.prompt);
      disposeInput(c.completion);
    }
    model.dispose();
  }
});

test('a prefill through the fused pass gives the tfjs path\'s hidden states, keys and values', { skip }, async () => {
  await initBackend('torch');
  for (const { name, model } of models()) {
    const { input } = buildInput(randomSeqs(new Rng(4), [7, 2, 11], model.arch.vocab_size), 0);
    const prefill = (native: boolean) =>
      withNativePass(native ? undefined : '0', () =>
        tf.tidy(() => {
          const before = passStats.forward;
          const r = model.forward(input, { returnCache: true });
          assert.equal(passStats.forward - before, native ? 1 : 0);
          return [r.hidden, ...r.cache!.k, ...r.cache!.v].map((t) => ({ shape: t.shape, values: t.dataSync() as Float32Array }));
        }),
      );
    const fused = prefill(true);
    const plain = prefill(false);
    assert.equal(fused.length, 1 + 2 * model.arch.n_layers);
    plain.forEach((p, i) => {
      assert.deepEqual(fused[i].shape, p.shape);
      assert.ok(maxAbsDiff(fused[i].values, p.values) <= 1e-5, `${name}: prefill output ${i} differs by ${maxAbsDiff(fused[i].values, p.values)}`);
    });
    disposeInput(input);
    model.dispose();
  }
});

test('a big fused pass runs as parts, one per thread, with the tfjs path\'s hidden states, gradients, keys and values', { skip }, async () => {
  await initBackend('torch');
  const native = loadNative();
  const before = native.info().threads;
  // three threads whatever the machine: uneven parts (5 prompts: 2, 2, 1)
  native.setThreads(3, 3);
  try {
    const model = loadCheckpoint(BASE).model;
    const V = model.arch.vocab_size;
    const rng = new Rng(21);
    const split = () => native.info().splitPasses;
    const s0 = split();
    const { input } = buildInput(randomSeqs(rng, Array.from({ length: 12 }, (_, i) => 8 + ((i * 7) % 17)), V), 0);
    compare(model, () => model.forward(input, { dropout: 0.2, rng: new Rng(3) }).hidden, 'parts, forward with dropout');
    const kv = (nativePass: boolean) =>
      withNativePass(nativePass ? undefined : '0', () => tf.tidy(() => {
        const r = model.forward(input, { returnCache: true });
        return [r.hidden, ...r.cache!.k, ...r.cache!.v].map((t) => t.dataSync() as Float32Array);
      }));
    const [fused, plain] = [kv(true), kv(false)];
    plain.forEach((p, i) => assert.ok(maxAbsDiff(fused[i], p) <= 1e-5, `parts, prefill output ${i} differs by ${maxAbsDiff(fused[i], p)}`));
    disposeInput(input);
    const prompts = randomSeqs(rng, [6, 10, 3, 8, 5], V);
    const conts = randomSeqs(rng, Array.from({ length: prompts.length * 4 }, (_, i) => 6 + ((i * 5) % 9)), V);
    const c = buildContinuation(prompts, conts, 4, 0);
    compare(model, () => model.forwardShared(c.prompt, c.completion, 4), 'parts, forwardShared group 4');
    disposeInput(c.prompt);
    disposeInput(c.completion);
    // the forward with dropout, the prefill and the shared forward were split (the tfjs runs do not reach the addon)
    assert.equal(split() - s0, 3, 'three passes ran as parts');
    model.dispose();
  } finally {
    native.setThreads(before, before);
  }
});

test('a fused pass that records no gradient keeps nothing in the addon; a bad handle is refused', { skip }, async () => {
  await initBackend('torch');
  const native = loadNative();
  const model = Transformer.init(TINY_ARCH, 3);
  const { input } = buildInput(randomSeqs(new Rng(2), [5, 8], TINY_ARCH.vocab_size), 0);
  const run = (i: ModelInput) => tf.tidy(() => model.forward(i).hidden.dataSync());
  run(input);
  const live = native.liveTensors();
  const before = passStats.forward;
  run(input);
  assert.equal(passStats.forward - before, 1);
  assert.equal(native.liveTensors(), live, 'no tensor (and no saved pass) left behind');
  // gradients taken and disposed: nothing left either
  const { value, grads } = tf.variableGrads(() => tf.sum(model.forward(input).hidden) as tf.Scalar);
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(native.liveTensors(), live);
  const notHandle = tf.tensor1d([1], 'int32');
  assert.throws(() => tf.tidy(() => tf.engine().runKernel('GtaTrainBackward', { dy: tf.zeros([2, 8, 16]), handle: notHandle })), /trainBackward: not a pass handle/);
  notHandle.dispose();
  disposeInput(input);
  model.dispose();
});
