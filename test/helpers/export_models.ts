/** The models test/export.test.ts exports, and scripts/write_export_fixtures.ts for Python transformers. */
import path from 'node:path';
import { loadInitial } from '../../src/model/init.js';
import type { Transformer } from '../../src/model/transformer.js';
import type { TextTokenizer } from '../../src/tokenizer/types.js';
import { repoRoot } from '../../src/util/paths.js';
import { tinyModel, tinyTokenizer } from './tiny.js';

export const EXPORT_TEXTS = ['the movie was very good', "dull, isn't it? café 42 <answer>"];

/** gta's own architecture (a seeded tiny model) and each Hugging Face family gta loads (the tiny fixtures). */
export function exportedModels(): { name: string; model: Transformer; tokenizer: TextTokenizer }[] {
  const tokenizer = tinyTokenizer();
  const own = { name: 'gta', model: tinyModel(tokenizer), tokenizer };
  const families = ['gpt2', 'llama', 'qwen2', 'qwen3'].map((family) => ({ name: family, ...loadInitial(path.join(repoRoot(), 'test', 'fixtures', 'hf', family), 1) }));
  return [own, ...families];
}
