import { test } from 'node:test';
import assert from 'node:assert/strict';
import tf from '../src/util/tfjs.cjs';
import { gatherRows } from '../src/backend/gather_rows.js';
import { buildContinuation, buildInput, concatenatedRows, disposeInput, targetPositions } from '../src/model/batch.js';
import { stepBias } from '../src/sample/decode.js';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.js';
import { lossAtRows } from '../src/train/sft.js';
import { disposeCache, type DecodeCache } from '../src/model/transformer.js';
import { maxAbsDiff, tinyModel, tinyTokenizer, tmpDir, useWasm } from './helpers/tiny.js';

const tok = tinyTokenizer();

test('left padding: positions restart at each row and the bias hides padding and the future', async () => {
  await useWasm();
  const { input, layout } = buildInput([[5, 6, 7], [8]], 0);
  assert.deepEqual(layout, { B: 2, T: 3, pad: [0, 2] });
  assert.deepEqual(Array.from(input.ids.dataSync()), [5, 6, 7, 0, 0, 8]);
  assert.deepEqual(Array.from(input.positions.dataSync()), [0, 1, 2, 0, 0, 0]);
  const bias = input.bias.arraySync() as number[][][][];
  assert.deepEqual(bias[0][0][1].map((x) => x === 0), [true, true, false]);
  assert.deepEqual(bias[1][0][2].map((x) => x === 0), [false, false, true]);
  const t = targetPositions([[5, 6, 7], [8, 9]], [2, 1], { B: 2, T: 3, pad: [0, 1] });
  // row 0 predicts 7 from column 1; row 1 (pad 1) predicts 9 from column 1 -> flat 3 + 1
  assert.deepEqual(Array.from(t.rows), [1, 4]);
  assert.deepEqual(Array.from(t.targets), [7, 9]);
  disposeInput(input);
});

test('KV-cache decoding gives the same logits as a full forward pass', async () => {
  await useWasm();
  const model = tinyModel(tok);
  const prompts = [tok.encode('the movie was good'), tok.encode('bad')];
  const cont = [tok.encode(' very great film'), tok.encode(' awful plot is')];
  const n = Math.min(cont[0].length, cont[1].length);
  const { input, layout } = buildInput(prompts, tok.padId);
  const pre = model.forward(input, { returnCache: true });
  let cache: DecodeCache = { prompt: pre.cache!, group: 1, own: null };
  const stepLogits: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const ids = tf.tensor1d(cont.map((c) => c[i]), 'int32');
    const pos = tf.tensor1d(prompts.map((p) => p.length + i), 'int32');
    const bias = stepBias(layout.pad, layout.T + i + 1);
    const r = model.step(ids, pos, bias, cache);
    stepLogits.push(model.logits(r.hidden).dataSync() as Float32Array);
    disposeCache(cache.own);
    cache = r.cache;
  }
  // full pass over prompt + continuation; compare the logits at the same positions
  const full = prompts.map((p, b) => [...p, ...cont[b].slice(0, n)]);
  const f = buildInput(full, tok.padId);
  const hidden = model.forward(f.input).hidden;
  for (let i = 0; i < n; i++) {
    const col = f.layout.T - n + i;
    const h = tf.reshape(tf.slice(hidden, [0, col, 0], [2, 1, -1]), [2, -1]) as tf.Tensor2D;
    const ref = model.logits(h).dataSync();
    assert.ok(maxAbsDiff(ref, stepLogits[i]) < 1e-4, `step ${i}: ${maxAbsDiff(ref, stepLogits[i])}`);
  }
});

test('prompt positions carry exactly zero loss gradient; target positions do not', async () => {
  await useWasm();
  const model = tinyModel(tok);
  const seqs = [
    [...tok.encode('the film'), tok.id('<answer>'), ...tok.encode('good'), tok.id('</answer>')],
    [...tok.encode('a bad plot was'), tok.id('<answer>'), ...tok.encode('bad'), tok.id('</answer>')],
  ];
  const from = [tok.encode('the film').length, tok.encode('a bad plot was').length];
  const { input, layout } = buildInput(seqs, tok.padId);
  const { rows, targets } = targetPositions(seqs, from, layout);
  const hidden = model.forward(input).hidden;
  const g = tf.grad((h: tf.Tensor) => lossAtRows(model, h as tf.Tensor3D, rows, targets))(hidden);
  const gr = g.arraySync() as number[][][];
  const targetRows = new Set(rows);
  for (let b = 0; b < layout.B; b++) {
    for (let t = 0; t < layout.T; t++) {
      const norm = Math.hypot(...gr[b][t]);
      if (targetRows.has(b * layout.T + t)) assert.ok(norm > 1e-6, `target row ${b},${t} has no gradient`);
      else assert.equal(norm, 0, `prompt/pad row ${b},${t} has gradient ${norm}`);
    }
  }
  // and the loss does not change when prompt tokens' own next-token "targets" change
  const l1 = lossAtRows(model, hidden, rows, targets).dataSync()[0];
  assert.ok(Number.isFinite(l1) && l1 > 0);
});

test('a checkpoint round trip reproduces logits exactly', async () => {
  await useWasm();
  const model = tinyModel(tok, 11);
  const dir = `${tmpDir()}/ckpt`;
  saveCheckpoint(dir, model, tok, { kind: 'base', step: 7 });
  const loaded = loadCheckpoint(dir);
  assert.equal(loaded.meta.step, 7);
  assert.equal(loaded.tokenizer.fingerprint(), tok.fingerprint());
  const { input } = buildInput([tok.encode('the movie is great')], tok.padId);
  const a = model.forward(input).hidden.dataSync();
  const b = loaded.model.forward(input).hidden.dataSync();
  assert.deepEqual(Array.from(b), Array.from(a));
  // overwriting keeps exactly one complete folder
  saveCheckpoint(dir, loaded.model, tok, { kind: 'base', step: 8 });
  assert.equal(loadCheckpoint(dir).meta.step, 8);
});

test('safetensors: round trip, and truncation is detected and named', () => {
  const t = new Map([
    ['w', { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['i', { dtype: 'I32' as const, shape: [2], data: Int32Array.from([7, -8]) }],
  ]);
  const buf = encodeSafetensors(t, { note: 'x' });
  assert.equal((8 + Number(buf.readBigUInt64LE(0))) % 8, 0);
  const back = decodeSafetensors(buf, 'f.safetensors');
  assert.deepEqual(Array.from(back.tensors.get('w')!.data), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(back.tensors.get('i')!.data), [7, -8]);
  assert.equal(back.metadata.note, 'x');
  assert.throws(() => decodeSafetensors(buf.subarray(0, buf.length - 4), 'f.safetensors'), /f\.safetensors: not a valid safetensors file \(tensor \w+ lies outside the file/);
});

test('loading a checkpoint whose weights do not fit its architecture names the parameter', async () => {
  await useWasm();
  const model = tinyModel(tok);
  const dir = `${tmpDir()}/ckpt`;
  saveCheckpoint(dir, model, tok, { kind: 'base', step: 1 });
  const fs = await import('node:fs');
  const meta = JSON.parse(fs.readFileSync(`${dir}/config.json`, 'utf8'));
  meta.arch.d_ff = 64;
  fs.writeFileSync(`${dir}/config.json`, JSON.stringify(meta));
  assert.throws(() => loadCheckpoint(dir), /model\.safetensors: parameter blocks\.0\.mlp\.w1 has shape \[16,32\], the architecture needs \[16,64\]/);
  assert.throws(() => loadCheckpoint(`${dir}-missing`), /no such checkpoint folder/);
});

test('forwardShared: completions after a shared prompt get the hidden states and gradients of a full forward pass', async () => {
  await useWasm();
  const model = tinyModel(tok);
  const prompts = [tok.encode('the movie was good'), tok.encode('bad')];
  const conts = [tok.encode(' very great'), tok.encode(' film'), tok.encode(' awful plot is'), tok.encode(' is'), tok.encode(' the plot'), tok.encode(' a bad film was')];
  const G = 3;
  const rowsPlain = concatenatedRows(conts.map((_, i) => prompts[Math.floor(i / G)].length), buildInput(conts.map((c, i) => [...prompts[Math.floor(i / G)], ...c]), tok.padId).layout);
  const full = buildInput(conts.map((c, i) => [...prompts[Math.floor(i / G)], ...c]), tok.padId);
  const shared = buildContinuation(prompts, conts, G, tok.padId);
  const rowsShared = shared.rowOf;
  // every token's predicting row, in both layouts
  const pairs = conts.flatMap((c, i) => c.map((_, j) => [rowsPlain(i, j), rowsShared(i, j)]));
  const plainIdx = tf.tensor1d(pairs.map((p) => p[0]), 'int32');
  const sharedIdx = tf.tensor1d(pairs.map((p) => p[1]), 'int32');
  const d = model.arch.d_model;
  const w = tf.randomNormal([pairs.length, d], 0, 1, 'float32', 11);
  const viaPlain = () => gatherRows(tf.reshape(model.forward(full.input).hidden, [-1, d]) as tf.Tensor2D, plainIdx) as tf.Tensor2D;
  const viaShared = () => {
    return gatherRows(model.forwardShared(shared.prompt, shared.completion, G), sharedIdx) as tf.Tensor2D;
  };
  assert.ok(maxAbsDiff(viaPlain().dataSync(), viaShared().dataSync()) < 1e-5);
  const grad = (f: () => tf.Tensor2D) => model.byParamName(tf.variableGrads(() => tf.sum(tf.mul(f(), w)) as tf.Scalar).grads);
  const a = grad(viaPlain);
  const b = grad(viaShared);
  for (const name of Object.keys(a)) assert.ok(maxAbsDiff(a[name].dataSync(), b[name].dataSync()) < 1e-4, `${name}: ${maxAbsDiff(a[name].dataSync(), b[name].dataSync())}`);
  model.dispose();
});
