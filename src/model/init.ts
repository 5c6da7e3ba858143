/**
 * A fine-tuning run's starting model: a gta checkpoint folder (from `gta pretrain` or a run), a
 * local Hugging Face model folder (config.json with a model_type, safetensors, tokenizer.json), or a
 * hub id (`Qwen/Qwen2.5-0.5B`) found in the local Hugging Face cache (hf_cache.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TextTokenizer } from '../tokenizer/types.js';
import { loadCheckpoint } from './checkpoint.js';
import { resolveModelFolder } from './hf_cache.js';
import { readConfigJson } from './hf_config.js';
import { isHfConfig, loadHfModel } from './hf_model.js';
import type { Transformer } from './transformer.js';

/** `seed` draws a Hugging Face model's new tag rows (the same seed gives the same initial model). */
export function loadInitial(init: string, seed: number): { model: Transformer; tokenizer: TextTokenizer } {
  const { dir } = resolveModelFolder(init);
  if (fs.existsSync(path.join(dir, 'config.json'))) {
    const config = readConfigJson(dir);
    if (isHfConfig(config)) return loadHfModel(dir, config, seed);
  }
  // a gta checkpoint, or loadCheckpoint's error saying what the folder lacks
  return loadCheckpoint(dir);
}
