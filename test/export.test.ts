/**
 * `gta export` (src/model/hf_export.ts): the folder reloads in gta's Hugging Face loader with the
 * exported model's logits and the same token ids, for gta's own architecture (as GPT-2 with ReLU) and
 * for each Hugging Face family it loads (gpt2, llama, qwen2, qwen3: the fixtures whose logits equal
 * Python transformers', so the round trip carries that parity), LoRA merged; and the command's errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tf from '../src/util/tfjs.cjs';
import { buildInput } from '../src/model/batch.js';
import { exportHfFolder } from '../src/model/hf_export.js';
import { loadInitial } from '../src/model/init.js';
import type { Transformer } from '../src/model/transformer.js';
import type { TextTokenizer } from '../src/tokenizer/types.js';
import { repoRoot } from '../src/util/paths.js';
import { Rng } from '../src/util/rng.js';
import { SafetensorsReader } from '../src/model/safetensors.js';
import { gta, tinyConfig } from './helpers/cli.js';
import { EXPORT_TEXTS, exportedModels } from './helpers/export_models.js';
import { maxAbsDiff, tinyModel, tinyTokenizer, tmpDir, useWasm } from './helpers/tiny.js';

/** Logits [T, cols] of `ids` (no padding), the first `cols` columns. */
function logits(model: Transformer, ids: number[], pad: number, cols: number): Float32Array {
  return tf.tidy(() => {
    const { input } = buildInput([ids], pad);
    const all = model.logits(tf.reshape(model.forward(input).hidden, [ids.length, -1]) as tf.Tensor2D);
    return tf.slice(all, [0, 0], [-1, cols]).dataSync() as Float32Array;
  });
}

/** Exports, reloads with gta's Hugging Face loader, and checks token ids and logits over the exported vocabulary. */
function roundTrip(model: Transformer, tok: TextTokenizer, mergeLora = false): { diff: number; config: Record<string, unknown>; dir: string } {
  const dir = path.join(tmpDir('gta-export-'), 'out');
  exportHfFolder(model, tok, dir, { mergeLora });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const back = loadInitial(dir, 1);
  const V = model.arch.vocab_size;
  let diff = 0;
  for (const text of EXPORT_TEXTS) {
    const ids = [tok.bosId, ...tok.encode(text)];
    assert.deepEqual(back.tokenizer.encode(text), tok.encode(text), `token ids of ${JSON.stringify(text)}`);
    diff = Math.max(diff, maxAbsDiff(logits(back.model, ids, tok.padId, V), logits(model, ids, tok.padId, V)));
  }
  back.model.dispose();
  return { diff, config: JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')), dir };
}

test("gta's own architecture exports as GPT-2 with ReLU: the same token ids and logits", async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok);
  const { diff, config, dir } = roundTrip(model, tok);
  assert.ok(diff < 1e-4, `logits differ by ${diff}`);
  assert.equal(config.model_type, 'gpt2');
  assert.equal(config.activation_function, 'relu');
  assert.deepEqual(config.architectures, ['GPT2LMHeadModel']);
  // the tags are special tokens of the exported tokenizer, at gta's ids
  const added = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')).added_tokens as { id: number; content: string }[];
  assert.deepEqual(added.map((t) => [t.id, t.content]).slice(3), [[3, '<guess>'], [4, '</guess>'], [5, '<think>'], [6, '</think>'], [7, '<answer>'], [8, '</answer>']]);
  model.dispose();
});

test('a Hugging Face model goes back to its own model_type with the tags added, the same logits', async () => {
  await useWasm();
  for (const family of ['gpt2', 'llama', 'qwen2', 'qwen3']) {
    const src = path.join(repoRoot(), 'test', 'fixtures', 'hf', family);
    const { model, tokenizer } = loadInitial(src, 1);
    const { diff, config, dir } = roundTrip(model, tokenizer);
    assert.ok(diff < 1e-4, `${family}: logits differ by ${diff}`);
    const original = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
    assert.equal(config.model_type, original.model_type);
    assert.equal(config.vocab_size, original.vocab_size + 6, `${family}: the six tags after the model's rows`);
    const added = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')).added_tokens as { id: number; content: string; special: boolean }[];
    assert.deepEqual(added.slice(-6).map((t) => [t.id, t.content, t.special]), ['<guess>', '</guess>', '<think>', '</think>', '<answer>', '</answer>'].map((t, i) => [original.vocab_size + i, t, true]));
    model.dispose();
  }
});

test('the exported folders load in Python transformers (AutoTokenizer, AutoModelForCausalLM; scripts/make_export_fixtures.py) with gta\'s token ids and logits', async () => {
  await useWasm();
  for (const { name, model, tokenizer } of exportedModels()) {
    const golden = new SafetensorsReader(path.join(repoRoot(), 'test', 'fixtures', 'export', name, 'golden.safetensors'));
    EXPORT_TEXTS.forEach((text, i) => {
      const ids = Array.from(golden.float32(`ids_${i}`));
      assert.deepEqual(tokenizer.encode(text), ids, `${name}: transformers' token ids of ${JSON.stringify(text)}`);
      const py = golden.float32(`logits_${i}`);
      const V = golden.entries.get(`logits_${i}`)!.shape[1];
      assert.equal(V, model.arch.vocab_size, `${name}: the exported vocabulary`);
      const diff = maxAbsDiff(logits(model, [tokenizer.bosId, ...ids], tokenizer.padId, V), py);
      assert.ok(diff < 1e-4, `${name}: logits differ from transformers' by ${diff}`);
    });
    model.dispose();
  }
});

test('LoRA adapters are merged into the weights (--merge-lora), or the export is refused', async () => {
  await useWasm();
  const { model: base, tokenizer } = loadInitial(path.join(repoRoot(), 'test', 'fixtures', 'hf', 'qwen2'), 1);
  const model = base.withAdapters({ r: 2, alpha: 4, dropout: 0, target_modules: ['q_proj', 'v_proj', 'down_proj'], base_model: null }, new Rng(3));
  // B starts at zero (the adapted model is the base): give it values so the merge matters
  const rng = new Rng(9);
  for (const [name, v] of model.params) if (name.endsWith('.B')) v.assign(tf.tensor(Array.from({ length: v.size }, () => rng.next() - 0.5), v.shape));
  assert.throws(() => exportHfFolder(model, tokenizer, path.join(tmpDir(), 'x'), { mergeLora: false }), /LoRA adapters: export them merged into the weights with --merge-lora/);
  const { diff } = roundTrip(model, tokenizer, true);
  assert.ok(diff < 1e-4, `merged logits differ by ${diff}`);
  model.dispose();
});

test('gta export writes a run checkpoint\'s folder; a used --out is refused with one line', () => {
  const dir = tmpDir();
  const r = gta(['train', '--config', tinyConfig(dir), '--set', 'train.steps=10', '--set', 'train.eval_every=5', '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  const out = path.join(dir, 'hf');
  const e = gta(['export', '--run', runDir, '--checkpoint', 'best', '--out', out, '--log-level', 'warn'], dir);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /as GPT2LMHeadModel \(GPT-2 with activation_function relu computes it exactly\)/);
  assert.ok(fs.existsSync(path.join(out, 'model.safetensors')));
  const again = gta(['export', '--run', runDir, '--out', out, '--log-level', 'warn'], dir);
  assert.equal(again.code, 2);
  assert.equal(again.stderr.trim(), `gta: error: ${out}: exists and is not empty; export writes a new folder`);
});
