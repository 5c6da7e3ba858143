/**
 * Activation checkpointing (train.activation_checkpointing, src/backend/recompute.ts): a model whose
 * layers run again in the backward gives the gradients of one that keeps its activations, with
 * dropout (the replayed seeds drop the same units) and through the shared-prompt pass RL trains
 * with; on torch it holds less at its peak.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import tf from '../src/util/tfjs.cjs';
import { initBackend } from '../src/backend/select.js';
import { variableGrads } from '../src/backend/lean_grads.js';
import { loadedNative } from '../src/backend/torch/native.js';
import { buildContinuation, buildInput, disposeInput, targetPositions } from '../src/model/batch.js';
import { loadInitial } from '../src/model/init.js';
import { Transformer } from '../src/model/transformer.js';
import { lossAtRows } from '../src/train/sft.js';
import { Rng } from '../src/util/rng.js';
import { repoRoot } from '../src/util/paths.js';
import { torchUnavailable } from './helpers/torch.js';
import { withEnv } from './helpers/env.js';
import { maxAbsDiff, TINY_ARCH, tinyModel, tinyTokenizer, useWasm } from './helpers/tiny.js';

const torchSkip = torchUnavailable();

/** Gradients and loss of `loss` with the model's layers kept and recomputed. */
function both(model: Transformer, loss: () => tf.Scalar): { kept: Map<string, Float32Array>; again: Map<string, Float32Array>; losses: number[] } {
  const run = (recompute: boolean) => {
    model.recompute = recompute;
    const { value, grads } = variableGrads(loss);
    const out = new Map(Object.entries(model.byParamName(grads)).map(([k, g]) => [k, g.dataSync() as Float32Array]));
    const l = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads)]);
    return { out, l };
  };
  const a = run(false);
  const b = run(true);
  model.recompute = false;
  return { kept: a.out, again: b.out, losses: [a.l, b.l] };
}

function assertSame(r: ReturnType<typeof both>): void {
  assert.ok(Math.abs(r.losses[0] - r.losses[1]) <= 1e-6, `losses ${r.losses}`);
  assert.deepEqual([...r.again.keys()].sort(), [...r.kept.keys()].sort());
  for (const [k, g] of r.kept) {
    const scale = Math.max(1e-3, ...Array.from(g, Math.abs).slice(0, 4096));
    assert.ok(maxAbsDiff(g, r.again.get(k)!) <= 1e-5 * scale, `${k}: ${maxAbsDiff(g, r.again.get(k)!)}`);
  }
}

test('wasm: recomputed layers give the same SFT gradients with dropout on (gta model) and through shared prompts (Qwen3 fixture)', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok);
  const seqs = [tok.encode('the movie was good'), tok.encode('a very bad plot')];
  const { input, layout } = buildInput(seqs, tok.padId);
  const { rows, targets } = targetPositions(seqs, [2, 2], layout);
  // the same dropout seeds each time: a fresh Rng per loss
  assertSame(both(model, () => lossAtRows(model, model.forward(input, { dropout: 0.2, rng: new Rng(7) }).hidden, rows, targets)));
  disposeInput(input);
  model.dispose();

  const hf = loadInitial(path.join(repoRoot(), 'test', 'fixtures', 'hf', 'qwen3'), 1);
  const t = hf.tokenizer;
  const cont = buildContinuation([t.encode('the film'), t.encode('it was dull and long')], [t.encode(' good'), t.encode(' bad!'), t.encode(' ok'), t.encode(' fine')], 2, t.padId);
  const loss = () => tf.mean(tf.square(hf.model.forwardShared(cont.prompt, cont.completion, 2))) as tf.Scalar;
  assertSame(both(hf.model, loss));
  disposeInput(cont.prompt);
  disposeInput(cont.completion);
  hf.model.dispose();
});

test('torch: recomputed layers give the same gradients and hold less at the peak', { skip: torchSkip }, async () => {
  await initBackend('torch');
  const native = loadedNative()!;
  // where activations outweigh the weights: 8 layers, 16 sequences of about 40 tokens
  const tok = tinyTokenizer();
  const model = Transformer.init({ ...TINY_ARCH, vocab_size: tok.vocabSize, n_layers: 8 }, 3);
  const words = ['good', 'bad', 'great', 'awful', 'movie', 'film', 'plot', 'the', 'a', 'was', 'is', 'very'];
  const seqs = Array.from({ length: 16 }, (_, i) => tok.encode(Array.from({ length: 14 }, (_, j) => words[(i * 5 + j * 7) % 12]).join(' ')).slice(0, 44));
  const { input, layout } = buildInput(seqs, tok.padId);
  const { rows, targets } = targetPositions(seqs, seqs.map((s) => s.length - 2), layout);
  const loss = () => lossAtRows(model, model.forward(input).hidden, rows, targets);
  // the tfjs path both ways (the fused native pass keeps its activations where the addon does not count them)
  withEnv('GTA_NATIVE_PASS', '0', () => {
    assertSame(both(model, loss));
    const peak = (recompute: boolean) => {
      model.recompute = recompute;
      native.memory!(true);
      const { value, grads } = variableGrads(loss);
      const p = native.memory!().peak;
      tf.dispose([value, ...Object.values(grads)]);
      return p;
    };
    const [kept, again] = [peak(false), peak(true)];
    assert.ok(again < 0.7 * kept, `recomputed ${again} bytes at the peak against ${kept} kept`);
  });
  disposeInput(input);
  model.dispose();
});
