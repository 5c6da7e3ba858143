/**
 * Hugging Face model folders as `init:` (src/model/hf_model.ts). The fixtures under test/fixtures/hf/
 * are tiny random models of each family in the format transformers saves, with the logits Python
 * transformers computed for a few texts (scripts/make_hf_fixtures.py made them, once): gta's tokens
 * and logits must equal those, on wasm and, when the libtorch addon is built, on torch. Then the
 * pieces training relies on (the key/value cache, shared-prompt passes, checkpoints, the added tags)
 * and every malformed folder's one-line error.
 */
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tf from '../src/util/tfjs.cjs';
import { onTorch, torchUnavailable } from './helpers/torch.js';
import { gatherRows } from '../src/backend/gather_rows.js';
import { buildContinuation, buildInput, concatenatedRows, disposeInput } from '../src/model/batch.js';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { loadInitial } from '../src/model/init.js';
import { decodeSafetensors, encodeSafetensors, SafetensorsReader, sha256File, writeSafetensors } from '../src/model/safetensors.js';
import { disposeCache, type DecodeCache, type Transformer } from '../src/model/transformer.js';
import { stepBias } from '../src/sample/decode.js';
import { HfTokenizer } from '../src/tokenizer/hf.js';
import { STRUCTURE_TAGS, type TextTokenizer } from '../src/tokenizer/types.js';
import { loadConfig } from '../src/config/load.js';
import { TrainConfigSchema } from '../src/config/schema.js';
import { GtaError } from '../src/util/errors.js';
import { repoRoot } from '../src/util/paths.js';
import { maxAbsDiff, tmpDir, useWasm } from './helpers/tiny.js';

const FIXTURES = path.join(repoRoot(), 'test', 'fixtures', 'hf');
const FAMILIES = ['gpt2', 'llama', 'qwen2', 'qwen3'] as const;
const TOL = 1e-4;

const torchSkip = torchUnavailable();

interface Golden {
  texts: string[];
  ids: number[][];
  /** [T, V] per text, V the model's own vocabulary (before gta's tags). */
  logits: { data: Float32Array; shape: number[] }[];
}

function golden(family: string): Golden {
  const { tensors, metadata } = decodeSafetensors(fs.readFileSync(path.join(FIXTURES, family, 'golden.safetensors')), 'golden');
  const texts = JSON.parse(metadata.texts) as string[];
  return {
    texts,
    ids: texts.map((_, i) => Array.from(tensors.get(`ids.${i}`)!.data)),
    logits: texts.map((_, i) => ({ data: tensors.get(`logits.${i}`)!.data as Float32Array, shape: tensors.get(`logits.${i}`)!.shape })),
  };
}

/** Largest |gta - transformers| over every position and every column of the model's own vocabulary, unpadded and in one left-padded batch. */
function logitDiff(model: Transformer, tok: TextTokenizer, g: Golden): { single: number; batched: number } {
  const cols = (l: tf.Tensor2D, V: number) => tf.slice(l, [0, 0], [-1, V]).dataSync();
  let single = 0;
  g.ids.forEach((ids, i) => {
    const V = g.logits[i].shape[1];
    const got = tf.tidy(() => {
      const { input } = buildInput([ids], tok.padId);
      return cols(model.logits(tf.reshape(model.forward(input).hidden, [ids.length, -1]) as tf.Tensor2D), V);
    });
    single = Math.max(single, maxAbsDiff(got, g.logits[i].data));
  });
  let batched = 0;
  tf.tidy(() => {
    const { input, layout } = buildInput(g.ids, tok.padId);
    const hidden = tf.reshape(model.forward(input).hidden, [layout.B * layout.T, -1]) as tf.Tensor2D;
    g.ids.forEach((ids, i) => {
      const rows = tf.tensor1d(ids.map((_, j) => i * layout.T + layout.pad[i] + j), 'int32');
      const got = cols(model.logits(gatherRows(hidden, rows) as tf.Tensor2D), g.logits[i].shape[1]);
      batched = Math.max(batched, maxAbsDiff(got, g.logits[i].data));
    });
  });
  return { single, batched };
}

function parity(t: { diagnostic: (m: string) => void }, backend: string): void {
  for (const family of FAMILIES) {
    const g = golden(family);
    const { model, tokenizer } = loadInitial(path.join(FIXTURES, family), 1);
    g.texts.forEach((text, i) => {
      assert.deepEqual([tokenizer.bosId, ...tokenizer.encode(text)], g.ids[i], `${family}: tokens of ${JSON.stringify(text)}`);
      assert.equal(tokenizer.decode(g.ids[i].slice(1)), text, `${family}: decode`);
    });
    const d = logitDiff(model, tokenizer, g);
    t.diagnostic(`${backend} ${family}: max |logit - transformers| ${d.single.toExponential(2)} unpadded, ${d.batched.toExponential(2)} left-padded`);
    assert.ok(d.single <= TOL && d.batched <= TOL, `${family} on ${backend}: logits differ from transformers' by ${d.single} (unpadded), ${d.batched} (left-padded)`);
    model.dispose();
  }
}

test('each family gives transformers\' tokens and logits (1e-4), unpadded and left-padded, on wasm', async (t) => {
  await useWasm();
  parity(t, 'wasm');
});

test('each family gives transformers\' logits on torch', { skip: torchSkip }, (t) => onTorch(() => parity(t, 'torch')));

test('the key/value cache and shared-prompt passes give a full forward pass\'s logits and gradients', async () => {
  await useWasm();
  for (const family of FAMILIES) {
    const { model, tokenizer: tok } = loadInitial(path.join(FIXTURES, family), 1);
    const prompts = [[tok.bosId, ...tok.encode('the movie was good')], [tok.bosId, ...tok.encode('bad')]];
    const cont = [tok.encode(' very great film'), tok.encode(' awful plot, is it')];
    const n = Math.min(...cont.map((c) => c.length));
    // decoding step by step from the prompts' cache
    const { input, layout } = buildInput(prompts, tok.padId);
    let cache: DecodeCache = { prompt: model.forward(input, { returnCache: true }).cache!, group: 1, own: null };
    const steps: Float32Array[] = [];
    for (let i = 0; i < n; i++) {
      const r = model.step(tf.tensor1d(cont.map((c) => c[i]), 'int32'), tf.tensor1d(prompts.map((p) => p.length + i), 'int32'), stepBias(layout.pad, layout.T + i + 1), cache);
      steps.push(model.logits(r.hidden).dataSync() as Float32Array);
      disposeCache(cache.own);
      cache = r.cache;
    }
    const full = buildInput(prompts.map((p, b) => [...p, ...cont[b].slice(0, n)]), tok.padId);
    const hidden = model.forward(full.input).hidden;
    for (let i = 0; i < n; i++) {
      const h = tf.reshape(tf.slice(hidden, [0, full.layout.T - n + i, 0], [2, 1, -1]), [2, -1]) as tf.Tensor2D;
      const d = maxAbsDiff(model.logits(h).dataSync(), steps[i]);
      assert.ok(d < 1e-4, `${family} step ${i}: ${d}`);
    }
    // a group of completions after each shared prompt (forwardShared), values and gradients
    const G = 2;
    const conts = [cont[0], cont[1].slice(0, 3), cont[1], cont[0].slice(0, 2)];
    const seqs = conts.map((c, i) => [...prompts[Math.floor(i / G)], ...c]);
    const plain = buildInput(seqs, tok.padId);
    const rowsPlain = concatenatedRows(conts.map((_, i) => prompts[Math.floor(i / G)].length), plain.layout);
    const shared = buildContinuation(prompts, conts, G, tok.padId);
    const pairs = conts.flatMap((c, i) => c.map((_, j) => [rowsPlain(i, j), shared.rowOf(i, j)]));
    const d = model.arch.d_model;
    // through the output head, so an untied head's gradient is checked too
    const w = tf.randomNormal([pairs.length, model.arch.vocab_size], 0, 1, 'float32', 7);
    const viaPlain = () => gatherRows(tf.reshape(model.forward(plain.input).hidden, [-1, d]) as tf.Tensor2D, tf.tensor1d(pairs.map((p) => p[0]), 'int32')) as tf.Tensor2D;
    const viaShared = () => gatherRows(model.forwardShared(shared.prompt, shared.completion, G), tf.tensor1d(pairs.map((p) => p[1]), 'int32')) as tf.Tensor2D;
    assert.ok(maxAbsDiff(viaPlain().dataSync(), viaShared().dataSync()) < 1e-5, `${family}: forwardShared's hidden states`);
    const grad = (f: () => tf.Tensor2D) => model.byParamName(tf.variableGrads(() => tf.sum(tf.mul(model.logits(f()), w)) as tf.Scalar).grads);
    const a = grad(viaPlain);
    const b = grad(viaShared);
    assert.deepEqual(Object.keys(a).sort(), [...model.params.keys()].sort(), `${family}: a gradient for every parameter`);
    for (const name of Object.keys(a)) {
      // relative above magnitude 1: these gradients sum over every vocabulary column
      const ga = a[name].dataSync();
      const diff = maxAbsDiff(ga, b[name].dataSync()) / Math.max(1, ...Array.from(ga, Math.abs));
      assert.ok(diff < 1e-5, `${family} ${name}: ${diff}`);
    }
    disposeInput(input);
    model.dispose();
  }
});

test('the tags are new tokens after the model\'s rows: placed by id only, excluded from free text, seeded rows near the mean', async () => {
  await useWasm();
  const dir = path.join(FIXTURES, 'qwen2');
  const { model, tokenizer } = loadInitial(dir, 1);
  const tok = tokenizer as HfTokenizer;
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  // 8 embedding rows past the tokenizer's vocabulary, as Qwen's: unused, then the six tags
  assert.equal(tok.vocabSize, config.vocab_size + STRUCTURE_TAGS.length);
  assert.equal(model.arch.vocab_size, tok.vocabSize);
  STRUCTURE_TAGS.forEach((tag, i) => assert.equal(tok.id(tag), config.vocab_size + i));
  assert.equal(tok.unusedIds.length, 8);
  assert.equal(tok.eosId, config.eos_token_id);
  // text never encodes to a tag or to the model's own special tokens
  const literal = tok.encode('<answer>positive</answer> <|im_end|><|endoftext|>');
  const specials = new Set(tok.specialIds());
  assert.ok(literal.every((id) => !specials.has(id)), `control ids from text: ${literal}`);
  assert.equal(tok.decode(literal), '<answer>positive</answer> <|im_end|><|endoftext|>');
  for (const id of [tok.eosId, tok.bosId, ...STRUCTURE_TAGS.map((t) => tok.id(t)), ...tok.unusedIds]) assert.ok(specials.has(id), `${id} is special`);
  const target = [tok.id('<answer>'), ...tok.encode('positive'), tok.id('</answer>'), tok.eosId];
  assert.equal(tok.decode(target), '<answer>positive</answer><|im_end|>');
  // the tag rows: near the mean of the used rows, distinct, the same for the same seed
  const emb = model.params.get('tok_emb')!.arraySync() as number[][];
  const used = emb.slice(0, config.vocab_size).filter((_, id) => !tok.unusedIds.includes(id));
  const mean = used[0].map((_, j) => used.reduce((s, r) => s + r[j], 0) / used.length);
  const spread = Math.sqrt(used.reduce((s, r) => s + r.reduce((q, x, j) => q + (x - mean[j]) ** 2, 0), 0) / used.length);
  const tagRows = emb.slice(config.vocab_size);
  for (const r of tagRows) assert.ok(Math.hypot(...r.map((x, j) => x - mean[j])) < 0.3 * spread, 'a tag row sits near the mean');
  assert.notDeepEqual(tagRows[0], tagRows[1]);
  const again = loadInitial(dir, 1).model;
  assert.deepEqual(again.params.get('tok_emb')!.arraySync(), emb);
  const other = loadInitial(dir, 2).model;
  assert.notDeepEqual((other.params.get('tok_emb')!.arraySync() as number[][]).slice(config.vocab_size), tagRows);
  // an untied head gets tag rows of its own
  const llama = loadInitial(path.join(FIXTURES, 'llama'), 1).model;
  assert.deepEqual(llama.params.get('head')!.shape, [llama.arch.vocab_size, llama.arch.d_model]);
  [model, again, other, llama].forEach((m) => m.dispose());
});

test('a checkpoint of a Hugging Face model keeps its style and tokenizer: the same logits after loading', async () => {
  await useWasm();
  for (const family of ['gpt2', 'qwen3'] as const) {
    const { model, tokenizer } = loadInitial(path.join(FIXTURES, family), 3);
    const dir = path.join(tmpDir(), 'ckpt');
    saveCheckpoint(dir, model, tokenizer, { kind: 'base', step: 2 });
    const loaded = loadCheckpoint(dir);
    assert.deepEqual(loaded.model.arch, model.arch);
    assert.equal(loaded.tokenizer.fingerprint(), tokenizer.fingerprint());
    assert.deepEqual(loaded.tokenizer.encode('a dull film'), tokenizer.encode('a dull film'));
    assert.equal(loaded.tokenizer.id('<guess>'), tokenizer.id('<guess>'));
    const { input } = buildInput([[tokenizer.bosId, ...tokenizer.encode('the movie was good')]], tokenizer.padId);
    assert.deepEqual(Array.from(loaded.model.forward(input).hidden.dataSync()), Array.from(model.forward(input).hidden.dataSync()));
    model.dispose();
    loaded.model.dispose();
  }
});

test('safetensors: the streaming writer writes encodeSafetensors\' bytes and their sha256', () => {
  const t = new Map([
    ['w', { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['b', { dtype: 'I32' as const, shape: [1], data: Int32Array.from([-7]) }],
  ]);
  const file = path.join(tmpDir(), 'w.safetensors');
  const lazy = new Map([...t].map(([k, v]) => [k, { dtype: v.dtype, shape: v.shape, read: () => v.data }]));
  const sha = writeSafetensors(file, lazy, { format: 'pt' });
  const expected = encodeSafetensors(t, { format: 'pt' });
  assert.deepEqual(fs.readFileSync(file), expected);
  assert.equal(sha, createHash('sha256').update(expected).digest('hex'));
  assert.equal(sha256File(file), sha);
  assert.deepEqual(Array.from(new SafetensorsReader(file).float32('w')), [1, 2, 3, 4, 5, 6]);
});

test('safetensors: F16 (subnormals, infinities) and BF16 read as float32', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'h.safetensors');
  const f16 = Uint16Array.of(0x3c00, 0xc000, 0x0001, 0x7c00, 0xfbff, 0x3555);
  const bf16 = Uint16Array.of(0x3f80, 0xc2f7, 0x0000, 0x8000);
  const header = JSON.stringify({ a: { dtype: 'F16', shape: [6], data_offsets: [0, 12] }, b: { dtype: 'BF16', shape: [2, 2], data_offsets: [12, 20] } });
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(header), Buffer.from(f16.buffer), Buffer.from(bf16.buffer)]));
  const r = new SafetensorsReader(file);
  assert.deepEqual(Array.from(r.float32('a')), [1, -2, 2 ** -24, Infinity, -65504, Math.fround(0.333251953125)]);
  assert.deepEqual(Array.from(r.float32('b')), [1, -123.5, 0, -0]);
});

/** A copy of a fixture, changed by `edit`; loading it must fail with one line matching `expected`. */
function broken(family: string, edit: (dir: string) => void, expected: RegExp): void {
  const dir = path.join(tmpDir('gta-hf-'), family);
  fs.cpSync(path.join(FIXTURES, family), dir, { recursive: true });
  edit(dir);
  assert.throws(
    () => loadInitial(dir, 1),
    (e: Error) => {
      assert.ok(e instanceof GtaError, `not a GtaError: ${e.stack}`);
      assert.ok(!e.message.includes('\n'), `more than one line: ${e.message}`);
      assert.ok(e.message.startsWith(dir), `does not name a file of the folder: ${e.message}`);
      assert.match(e.message, expected);
      return true;
    },
  );
}

const editJson = (file: string, f: (j: Record<string, unknown>) => void) => {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  f(j);
  fs.writeFileSync(file, JSON.stringify(j));
};

test('a folder with a missing or mismatched file gets one line naming the file', async () => {
  await useWasm();
  const cfg = (dir: string) => path.join(dir, 'config.json');
  broken('qwen2', (d) => fs.rmSync(path.join(d, 'tokenizer.json')), /\/tokenizer\.json: missing; gta reads a model's tokenizer from tokenizer\.json/);
  broken('qwen2', (d) => editJson(cfg(d), (j) => (j.intermediate_size = 48)), /\/model\.safetensors: model\.layers\.0\.mlp\.gate_proj\.weight has shape \[64,32\], config\.json implies \[48,32\]$/);
  broken('gpt2', (d) => editJson(cfg(d), (j) => (j.n_positions = 128)), /\/model\.safetensors: transformer\.wpe\.weight has shape \[64,32\], config\.json implies \[128,32\]$/);
  broken('qwen3', (d) => editJson(cfg(d), (j) => (j.vocab_size = 200)), /\/tokenizer\.json: token id \d+ is past the model's 200 embedding rows/);
  broken('qwen2', (d) => editJson(cfg(d), (j) => (j.model_type = 'bert')), /\/config\.json: model_type 'bert' is not supported; gta loads gpt2, llama, mistral, qwen2, qwen3$/);
  broken('llama', (d) => fs.rmSync(path.join(d, 'model-00002-of-00003.safetensors')), /\/model-00002-of-00003\.safetensors: missing \(model\.safetensors\.index\.json lists it\)$/);
  broken('qwen3', (d) => fs.rmSync(path.join(d, 'model.safetensors')), /\/model\.safetensors: missing, and no model\.safetensors\.index\.json either$/);
  broken('llama', (d) => editJson(cfg(d), (j) => (j.attention_bias = true)), /\/model\.safetensors\.index\.json: missing tensor model\.layers\.0\.self_attn\.q_proj\.bias \(config\.json's architecture needs it\)$/);
  broken('qwen3', (d) => editJson(cfg(d), (j) => (j.model_type = 'qwen2')), /\/model\.safetensors: unexpected tensor model\.layers\.\d\.self_attn\.[qk]_norm\.weight/);
  broken('llama', (d) => editJson(cfg(d), (j) => ((j.rope_scaling as Record<string, unknown>).rope_type = 'yarn')), /\/config\.json: rope_scaling: rope type 'yarn' is not supported \(default, linear, llama3\)$/);
  broken('qwen2', (d) => fs.writeFileSync(cfg(d), '{"model_type": "qwen2",'), /\/config\.json: not valid JSON/);
  broken('qwen2', (d) => fs.truncateSync(path.join(d, 'model.safetensors'), 30_000), /\/model\.safetensors: not a valid safetensors file \(tensor [\w.]+ lies outside the file \(truncated\?\)\)$/);
  broken('qwen2', (d) => fs.rmSync(cfg(d)), /\/config\.json: missing \(neither a gta checkpoint nor a Hugging Face model folder\)$/);
});

test('the example configs for Hugging Face models (configs/hf/) are valid run configs', () => {
  const dir = path.join(repoRoot(), 'configs', 'hf');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length > 0);
  for (const f of files) {
    const { config } = loadConfig(TrainConfigSchema, path.join(dir, f));
    assert.notEqual(config.init, 'scratch');
  }
});
