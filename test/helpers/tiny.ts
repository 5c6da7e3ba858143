/** Small fixtures shared by tests: a tiny model, a tokenizer trained on synthetic text, temp folders. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tf from '../../src/util/tfjs.cjs';
import { initBackend } from '../../src/backend/select.js';
import { Tokenizer } from '../../src/tokenizer/bpe.js';
import { Transformer } from '../../src/model/transformer.js';
import type { ModelArch } from '../../src/config/schema.js';

export const TINY_ARCH: ModelArch = { vocab_size: 300, d_model: 16, n_layers: 2, n_heads: 2, d_ff: 32, max_seq_len: 48 };

let ready: Promise<unknown> | undefined;
/**
 * Tests run on the wasm backend: deterministic (single-threaded, no GPU), the same on every machine,
 * and about 30x faster than tfjs's pure-JS cpu backend on these small models.
 */
export function useWasm(): Promise<unknown> {
  ready ??= initBackend('wasm');
  return ready.then(() => tf.setBackend('wasm'));
}

export function tinyTokenizer(): Tokenizer {
  const words = ['good', 'bad', 'great', 'awful', 'movie', 'film', 'plot', 'the', 'a', 'was', 'is', 'very'];
  const texts: string[] = [];
  for (let i = 0; i < 200; i++) texts.push(`${words[i % 12]} ${words[(i * 7) % 12]} ${words[(i * 5) % 12]}`);
  return Tokenizer.train(texts, { vocabSize: TINY_ARCH.vocab_size });
}

export function tinyModel(tok: Tokenizer, seed = 3): Transformer {
  return Transformer.init({ ...TINY_ARCH, vocab_size: tok.vocabSize }, seed);
}

export function tmpDir(prefix = 'gta-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
