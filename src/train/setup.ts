/**
 * Everything a fine-tuning run needs before its first step: the backend, the data, the base
 * checkpoint (or fresh weights and a tokenizer trained on the training text), and the prompt format.
 * All of it can fail on bad input, so it runs before the run directory exists: a config or data error
 * leaves nothing behind.
 */
import { MODE_TRAITS } from '../config/modes.js';
import type { TrainConfig } from '../config/schema.js';
import { initBackend, type BackendInfo } from '../backend/select.js';
import { keepBf16Copies, setPrecision, storeInBf16 } from '../backend/torch/precision.js';
import { checkBatch, checkSplits } from '../data/checks.js';
import { checkReadPath } from '../util/read_roots.js';
import { loadDataset } from '../data/load.js';
import type { Dataset } from '../data/types.js';
import { loadCheckpoint } from '../model/checkpoint.js';
import { loadInitial } from '../model/init.js';
import { resolveTargets } from '../model/lora.js';
import { Transformer } from '../model/transformer.js';
import { STREAMS } from '../util/rng.js';
import { Tokenizer } from '../tokenizer/bpe.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { GtaError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { promptBuilder, type PromptBuilder } from '../task/prompt.js';
import { maxStructuredLength, structureSpec } from '../task/structure.js';
import { loadRewards } from '../task/reward_plugins.js';
import type { Reward } from '../task/rewards.js';

export interface Prepared {
  backend: BackendInfo;
  data: Dataset;
  model: Transformer;
  tokenizer: TextTokenizer;
  prompts: PromptBuilder;
  /** Where the weights came from: a checkpoint folder, a Hugging Face model folder, or "scratch". */
  init: string;
  /** The initial model again (the frozen reference of the KL term), however far training has gone. */
  reference: () => Transformer;
  /** rl.rewards, reward modules imported (RL, GTA and sft_then_rl's RL phase; [] in SFT). */
  rewards: Reward[];
}

/** With `resumeFrom` (a training checkpoint), the weights and tokenizer come from there instead of cfg.init. */
export async function prepare(cfg: TrainConfig, log: Logger, resumeFrom?: string): Promise<Prepared> {
  const backend = await initBackend(cfg.backend);
  setPrecision(cfg.train.precision, backend);
  log.info({ backend: backend.name, device: backend.device, precision: cfg.train.precision }, 'backend ready');
  // a queue job's checkpoint is checked again where it is read (the data files are, as they are opened)
  if (typeof cfg.init === 'string' && cfg.init !== 'scratch') checkReadPath('init', cfg.init);
  const data = await loadDataset(cfg.data, cfg.data.split_seed);
  log.info({ dataset: data.name, train: data.train.length, dev: data.dev.length, test: data.test.length, labels: data.labels.length }, 'data loaded');
  // a run on one class or without a dev example would "finish" meaning nothing: refused before its run directory
  checkSplits(data, cfg.data.dev_fraction);
  checkBatch(data, cfg.train.batch_size, MODE_TRAITS[cfg.mode].grouped ? cfg.rl.group_size : undefined);
  for (const w of data.warnings ?? []) log.warn({ dataset: data.name }, w);
  let model: Transformer;
  let tokenizer: TextTokenizer;
  // From scratch, the tokenizer is trained on the training text and the weights drawn from the seed,
  // both deterministic, so the initial model can be rebuilt at any time (a Hugging Face model's tag
  // rows are drawn from the seed too).
  const initial = (tok: TextTokenizer) =>
    cfg.init === 'scratch' ? Transformer.init({ ...cfg.model, vocab_size: tok.vocabSize }, cfg.seed) : loadInitial(cfg.init, cfg.seed).model;
  if (resumeFrom) {
    ({ model, tokenizer } = loadCheckpoint(resumeFrom));
  } else if (cfg.init === 'scratch') {
    tokenizer = Tokenizer.train(
      data.train.map((e) => e.text),
      { vocabSize: cfg.model.vocab_size },
    );
    model = initial(tokenizer);
  } else {
    ({ model, tokenizer } = loadInitial(cfg.init, cfg.seed));
  }
  const lora = cfg.train.lora;
  if (lora && !resumeFrom) {
    // (a resumed run's checkpoint holds its adapters)
    const spec = { r: lora.r, alpha: lora.alpha, dropout: lora.dropout, target_modules: resolveTargets(model.arch, lora.target_modules), base_model: cfg.init === 'scratch' ? null : cfg.init };
    model = model.withAdapters(spec, STREAMS.adapters(cfg.seed));
  }
  model.recompute = cfg.train.activation_checkpointing;
  storeForPrecision(model, cfg.train.precision);
  log.info({ init: cfg.init, params: model.numParams, trainable: [...model.trainable().values()].reduce((a, v) => a + v.size, 0), arch: model.arch }, 'model ready');
  const prompts = promptBuilder(tokenizer, cfg.prompt.template, cfg.data.max_text_tokens, cfg.prompt.chat);
  checkFits(cfg, data, prompts, model, tokenizer);
  const rewards = MODE_TRAITS[cfg.mode].grouped ? await loadRewards(cfg.rl.rewards, data.labels) : [];
  const fresh = () => storeForPrecision(initial(tokenizer), cfg.train.precision);
  return { backend, data, model, tokenizer, prompts, init: cfg.init, rewards, reference: () => frozenInitial(resumeFrom && !model.arch.lora ? fresh() : undefined, model) };
}

/** Where a model's weights live under `precision` (src/backend/torch/precision.ts says why). */
function storeForPrecision(model: Transformer, precision: TrainConfig['train']['precision']): Transformer {
  if (precision === 'bf16-true') {
    // every weight in bfloat16 alone (a copy of it, the KL reference, too: tfjs's ops keep the dtype)
    storeInBf16(model.params.values());
  } else if (precision === 'bf16') {
    // a LoRA run's frozen matrices in bfloat16 alone; the weights that train keep float32 masters and bfloat16 copies
    if (model.arch.lora) storeInBf16([...model.params.values()].filter((v) => !v.trainable && v.rank === 2));
    keepBf16Copies(model.params.values());
  }
  return model;
}

/**
 * The initial weights, frozen: `fresh` (rebuilt on resume) frozen where it is, else a frozen copy of
 * `model` before it trains. One extra copy of the weights either way (4 bytes a parameter).
 */
function frozenInitial(fresh: Transformer | undefined, model: Transformer): Transformer {
  // with adapters the base never trains: the model without them is the initial model, for nothing
  if (model.arch.lora) return model.base();
  return fresh ? fresh.freeze() : model.frozenCopy();
}

/** The longest prompt plus the longest completion must fit the model's context. */
function checkFits(cfg: TrainConfig, data: Dataset, prompts: PromptBuilder, model: Transformer, tok: TextTokenizer): void {
  const overhead = prompts.prompt('').length;
  const completion = MODE_TRAITS[cfg.mode].completion;
  const answer =
    completion === 'answer'
      ? Math.max(...data.labels.map((l) => prompts.answerTarget(l).length))
      : cfg.rl.decoding === 'structured'
        ? maxStructuredLength(structureSpec(tok, completion, data.labels, cfg.rl.think_max_tokens))
        : cfg.rl.max_completion_tokens;
  const need = overhead + cfg.data.max_text_tokens + answer;
  const room = model.arch.max_seq_len - overhead - answer;
  if (room < 1) {
    // no max_text_tokens would do: the advice is about the prompt, not a negative token count
    throw new GtaError(
      `prompt.template: the prompt alone is ${overhead} tokens and the answer ${answer}, leaving no room for text in the model's max_seq_len ${model.arch.max_seq_len}; shorten prompt.template${cfg.init === 'scratch' ? ' or raise model.max_seq_len' : ''}`,
    );
  }
  if (need > model.arch.max_seq_len) {
    throw new GtaError(
      `data.max_text_tokens: ${cfg.data.max_text_tokens} text tokens + ${overhead} prompt tokens + ${answer} answer tokens = ${need} exceed the model's max_seq_len ${model.arch.max_seq_len}; lower data.max_text_tokens to ${room}`,
    );
  }
}
