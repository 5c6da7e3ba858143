/**
 * The fused native decoding step (native/decode_step.cc, used by src/sample/decode.ts on the torch
 * backend): its logits equal Transformer.step + logits at every step, on a seeded tiny model and on
 * checkpoints/base, over left-padded prompts of different lengths, groups of 1 and 4, and rows that
 * stop needing logits; whole seeded rollouts give the same tokens with it on and off
 * (GTA_NATIVE_DECODE=0); a styled Hugging Face model keeps the tfjs path; sampling in the addon draws
 * what JavaScript draws. Skipped with the reason
 * when the libtorch addon was not built.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import test from 'node:test';
import tf from '../src/util/tfjs.cjs';
import { gatherRows } from '../src/backend/gather_rows.js';
import { initBackend } from '../src/backend/select.js';
import { NativeDecodeStep } from '../src/backend/torch/decode_step.js';
import { loadNative } from '../src/backend/torch/native.js';
import { buildInput, disposeInput } from '../src/model/batch.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { loadInitial } from '../src/model/init.js';
import { disposeCache, Transformer, type DecodeCache, type KvCache, type ModelInput } from '../src/model/transformer.js';
import { greedyGenerate, stepBias } from '../src/sample/decode.js';
import { openNativeStep } from '../src/sample/native_step.js';
import { sampleCompletions, sampleFrom, type Completion } from '../src/sample/rollout.js';
import { structureSpec } from '../src/task/structure.js';
import type { TextTokenizer } from '../src/tokenizer/types.js';
import { repoRoot } from '../src/util/paths.js';
import { Rng } from '../src/util/rng.js';
import { maxAbsDiff, TINY_ARCH, tinyTokenizer } from './helpers/tiny.js';
import { withEnv } from './helpers/env.js';
import { torchUnavailable } from './helpers/torch.js';

const skip = torchUnavailable();
const TOL = 1e-5;
const BASE = path.join(repoRoot(), 'checkpoints', 'base');

const withNativeDecode = <T>(value: string | undefined, f: () => T): T => withEnv('GTA_NATIVE_DECODE', value, f);

/** The keys and values of a prefill of `input` (nothing else of the pass kept). */
function prefillCache(model: Transformer, input: ModelInput): KvCache {
  return tf.tidy(() => {
    const { k, v } = model.forward(input, { returnCache: true }).cache!;
    return { k, v };
  });
}

/** Prompts of the given lengths, of random ordinary tokens. */
function randomPrompts(rng: Rng, lengths: number[], V: number): number[][] {
  return lengths.map((n) => Array.from({ length: n }, () => 10 + rng.int(V - 10)));
}

/**
 * Runs `steps` decoding steps both ways from one prefill of `unique` (each prompt shared by `group`
 * rows) and returns the largest |native - tfjs| over every step's logits. Rows stop needing logits
 * as decoding goes (some for good, some for a step, one step none at all); the tokens fed are the
 * tfjs logits' argmax where a row has them.
 */
function compareSteps(model: Transformer, unique: number[][], group: number, steps: number, padId: number): number {
  const V = model.arch.vocab_size;
  const { input, layout } = buildInput(unique, padId);
  const prompt = prefillCache(model, input);
  disposeInput(input);
  const B = unique.length * group;
  const pad = layout.pad.flatMap((p) => Array.from({ length: group }, () => p));
  const lengths = unique.flatMap((p) => Array.from({ length: group }, () => p.length));
  const native = openNativeStep(model, prompt, pad, group, steps);
  assert.ok(native, 'the native step applies to a gta model on torch');
  const rng = new Rng(17);
  let cache: DecodeCache = { prompt, group, own: null };
  const next = Int32Array.from({ length: B }, () => 10 + rng.int(V - 10));
  let worst = 0;
  const kinds = new Set<string>();
  try {
    for (let s = 0; s < steps; s++) {
      // every row at step 0; none at step 2; then row b stops for good after step b % steps, and every third row skips odd steps
      const need: number[] = [];
      for (let b = 0; b < B; b++) if (s === 0 || (s !== 2 && b % steps >= s && !(b % 3 === 0 && s % 2 === 1))) need.push(b);
      kinds.add(need.length === B ? 'all' : need.length === 0 ? 'none' : 'some');
      const positions = Int32Array.from(lengths, (n) => n + s);
      const expected = tf.tidy(() => {
        const ids = tf.tensor1d(next, 'int32');
        const r = model.step(ids, tf.tensor1d(positions, 'int32'), stepBias(pad, layout.T + s + 1), cache);
        const own = r.cache.own!;
        for (const x of [...own.k, ...own.v]) tf.keep(x);
        disposeCache(cache.own);
        cache = r.cache;
        if (need.length === 0) return new Float32Array(0);
        const h = need.length === B ? r.hidden : (gatherRows(r.hidden, tf.tensor1d(need, 'int32')) as tf.Tensor2D);
        return model.logits(h).dataSync() as Float32Array;
      });
      const got: Float32Array = native.step(next, positions, Int32Array.from(need));
      assert.equal(got.length, need.length * V);
      const diff = maxAbsDiff(got, expected);
      assert.ok(diff <= TOL, `step ${s} (group ${group}, ${need.length} of ${B} rows): logits differ by ${diff}`);
      worst = Math.max(worst, diff);
      need.forEach((b, j) => {
        let best = 0;
        for (let c = 1; c < V; c++) if (expected[j * V + c] > expected[j * V + best]) best = c;
        next[b] = best;
      });
      for (let b = 0; b < B; b++) if (!need.includes(b)) next[b] = 10 + rng.int(V - 10);
    }
    assert.throws(() => native.step(next, Int32Array.from(lengths, (n) => n + steps), new Int32Array(0)), /decodeStep: the own cache is full \(\d+ tokens\)/);
  } finally {
    native.close();
    disposeCache(cache.own);
    disposeCache(prompt);
  }
  assert.deepEqual([...kinds].sort(), ['all', 'none', 'some']);
  return worst;
}

test('native step logits equal Transformer.step + logits at every step (tiny model and checkpoints/base, groups 1 and 4)', { skip }, async (t) => {
  await initBackend('torch');
  const tok = tinyTokenizer();
  const tiny = Transformer.init({ ...TINY_ARCH, vocab_size: tok.vocabSize, n_heads: 4 }, 5);
  const base = loadCheckpoint(BASE);
  const rng = new Rng(3);
  const live = loadNative().liveTensors();
  const tensors = tf.memory().numTensors;
  for (const [name, model, padId] of [
    ['tiny', tiny, tok.padId],
    ['base', base.model, base.tokenizer.padId],
  ] as const) {
    const prompts = randomPrompts(rng, [3, 9, 1, 6, 12], model.arch.vocab_size);
    for (const group of [1, 4]) {
      const diff = compareSteps(model, prompts, group, 7, padId);
      t.diagnostic(`${name}, group ${group}: max |native - tfjs| = ${diff.toExponential(2)}`);
    }
  }
  assert.equal(tf.memory().numTensors, tensors, 'tfjs tensors leaked');
  assert.equal(loadNative().liveTensors(), live, 'addon tensors leaked');
  tiny.dispose();
  base.model.dispose();
});

/** Rollouts with the native step on and off: the same completions, and the native one really ran natively. */
function bothWays<T>(f: () => T): { on: T; off: T; steps: number } {
  const before = NativeDecodeStep.stepsRun;
  const on = withNativeDecode(undefined, f);
  const steps = NativeDecodeStep.stepsRun - before;
  const off = withNativeDecode('0', f);
  assert.equal(NativeDecodeStep.stepsRun, before + steps, 'GTA_NATIVE_DECODE=0 ran the native step');
  return { on, off, steps };
}

function rollouts(model: Transformer, tok: TextTokenizer, texts: string[], labels: string[]): void {
  const spec = structureSpec(tok, 'gta', labels, 4);
  const prompts = texts.map((s) => tok.encode(s));
  const common = { spec, temperature: 1, topP: 1, maxNewTokens: 12, padId: tok.padId };
  const runs: [string, () => Completion[] | number[][]][] = [
    // configs/sst2-gta.yaml's rollout: structured, G completions per prompt from per-prompt streams
    ['structured, group 4', () => sampleCompletions(model, prompts, { ...common, decoding: 'structured', greedy: false, repeat: 4, rng: prompts.map((_, i) => new Rng(100 + i)) })],
    ['structured, top-p 0.9', () => sampleCompletions(model, prompts, { ...common, decoding: 'structured', topP: 0.9, greedy: false, rng: new Rng(7) })],
    ['structured, greedy', () => sampleCompletions(model, prompts, { ...common, decoding: 'structured', greedy: true, rng: new Rng(0) })],
    ['free, group 2', () => sampleCompletions(model, prompts, { ...common, decoding: 'free', greedy: false, repeat: 2, rng: new Rng(9) })],
    ['greedyGenerate', () => greedyGenerate(model, prompts, { maxNewTokens: 12, stopId: tok.eosId, padId: tok.padId })],
  ];
  for (const [name, f] of runs) {
    const { on, off, steps } = bothWays(f);
    assert.ok(steps > 0, `${name}: the native step did not run`);
    assert.deepEqual(on, off, `${name}: completions differ with the native step`);
  }
}

test('seeded rollouts give the same completions with the native step on and off (tiny model and checkpoints/base)', { skip }, async () => {
  await initBackend('torch');
  const tok = tinyTokenizer();
  const tiny = Transformer.init({ ...TINY_ARCH, vocab_size: tok.vocabSize }, 8);
  const base = loadCheckpoint(BASE);
  const live = loadNative().liveTensors();
  const tensors = tf.memory().numTensors;
  rollouts(tiny, tok, ['good movie', 'the plot was very bad', 'a film', 'awful awful', 'is'], ['good', 'bad']);
  const texts = ['a gripping , beautifully acted film .', 'dull', 'the plot goes nowhere and the jokes fall flat', 'warm and funny'];
  rollouts(base.model, base.tokenizer, texts, ['negative', 'positive']);
  assert.equal(tf.memory().numTensors, tensors, 'tfjs tensors leaked');
  assert.equal(loadNative().liveTensors(), live, 'addon tensors leaked');
  tiny.dispose();
  base.model.dispose();
});

test('a styled Hugging Face model keeps the tfjs path; GTA_NATIVE_DECODE=0 turns the native step off', { skip }, async () => {
  await initBackend('torch');
  for (const family of ['gpt2', 'llama']) {
    const { model, tokenizer } = loadInitial(path.join(repoRoot(), 'test', 'fixtures', 'hf', family), 1);
    const { input } = buildInput([tokenizer.encode('hello there')], tokenizer.padId);
    const cache = prefillCache(model, input);
    assert.equal(openNativeStep(model, cache, [0], 1, 4), null, `${family}: a styled model took the native step`);
    disposeCache(cache);
    disposeInput(input);
    const before = NativeDecodeStep.stepsRun;
    const out = greedyGenerate(model, [tokenizer.encode('hello there'), tokenizer.encode('a')], { maxNewTokens: 6, stopId: tokenizer.eosId, padId: tokenizer.padId });
    assert.equal(NativeDecodeStep.stepsRun, before, `${family}: decoding ran the native step`);
    assert.ok(out.every((o) => o.length > 0));
    model.dispose();
  }
  const tok = tinyTokenizer();
  const tiny = Transformer.init({ ...TINY_ARCH, vocab_size: tok.vocabSize }, 2);
  const { input } = buildInput([tok.encode('good movie')], tok.padId);
  const r = prefillCache(tiny, input);
  withNativeDecode('0', () => assert.equal(openNativeStep(tiny, r, [0], 1, 4), null));
  const on = openNativeStep(tiny, r, [0], 1, 4);
  assert.ok(on);
  on.close();
  assert.throws(() => on.step(new Int32Array(1), new Int32Array(1), new Int32Array(0)), /the session is closed/);
  // the addon checks what it is given
  const weights = [...tiny.params.values()];
  const spec = { weights, promptK: r.k, promptV: r.v, pad: [0], group: 1, heads: 2, capacity: 4, scale: 0.5, eps: 1e-5, negInf: -1e9 };
  assert.throws(() => NativeDecodeStep.open({ ...spec, weights: weights.slice(1) }), /^Error: decodeBegin: 27 weights: expected 4 \+ 12 per block$/);
  assert.throws(() => NativeDecodeStep.open({ ...spec, pad: [0, 0, 0] }), /^Error: decodeBegin: blocks\.0\.prompt keys has shape \[1,2,(\d+),8\], expected \[3,2,\1,8\]$/);
  disposeCache(r);
  disposeInput(input);
  tiny.dispose();
});

test('sampling a large candidate set in the addon (torch) draws what JavaScript draws (wasm), at temperatures 1 and 0.7', { skip }, async () => {
  const V = 4096;
  const logits = Float32Array.from({ length: V }, (_, i) => Math.sin(i * 1.7) * 4);
  const specials = new Set([1, 2, 3, 4, 5, 6]);
  const text = { kind: 'text' as const, plus: [4] };
  const draws = (t: number, topP = 1) => {
    const rng = new Rng(21);
    return Array.from({ length: 3000 }, () => sampleFrom(logits, text, specials, t, topP, rng));
  };
  const native = loadNative();
  const sampleRow = native.sampleRow!;
  let calls = 0;
  native.sampleRow = (...a) => (calls++, sampleRow(...a));
  try {
    for (const t of [1, 0.7]) {
      await initBackend('wasm');
      const js = draws(t);
      assert.equal(calls, 0, 'wasm samples in JavaScript');
      await initBackend('torch');
      const fast = draws(t);
      assert.equal(calls, 3000, 'torch sampled every row in the addon');
      calls = 0;
      assert.deepEqual(fast, js);
      assert.ok(fast.every((id) => id === 4 || !specials.has(id)), 'only candidates are drawn');
      assert.ok(new Set(fast).size > 100, 'a spread of draws');
    }
    draws(1, 0.9);
    assert.equal(calls, 0, 'top-p samples in JavaScript');
  } finally {
    native.sampleRow = sampleRow;
  }
  assert.throws(() => sampleRow(new Float32Array(4), Int32Array.of(1, 7), 1, 0.5), /sampleRow: candidate 7 outside 4 logits/);
});
