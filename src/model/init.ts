/**
 * A fine-tuning run's starting model: a gta checkpoint folder (from `gta pretrain` or a run), or a
 * local Hugging Face model folder (config.json with a model_type, safetensors, tokenizer.json).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { TextTokenizer } from '../tokenizer/types.js';
import { loadCheckpoint } from './checkpoint.js';
import { readConfigJson } from './hf_config.js';
import { isHfConfig, loadHfModel } from './hf_model.js';
import type { Transformer } from './transformer.js';

/** `seed` draws a Hugging Face model's new tag rows (the same seed gives the same initial model). */
export function loadInitial(dir: string, seed: number): { model: Transformer; tokenizer: TextTokenizer } {
  if (fs.existsSync(path.join(dir, 'config.json'))) {
    const config = readConfigJson(dir);
    if (isHfConfig(config)) return loadHfModel(dir, config, seed);
  }
  // a gta checkpoint, or loadCheckpoint's error saying what the folder lacks
  return loadCheckpoint(dir);
}
