/**
 * `npm run bench [-- --backend wasm --steps 20]`: training tokens/s and eval examples/s of the default
 * model (configs/pretrain-base.yaml's architecture) on one backend. A benchmark, not a test: it prints
 * numbers and asserts nothing.
 *
 * Three measurements:
 *  - lm:   a causal-LM step on random full-length sequences (batch 32 x seq 64, loss at every position),
 *          the shape of DESIGN.md's engine table;
 *  - sft:  SFT steps on real SST-2 training prompts (bucketed batches, loss on the answer only);
 *  - eval: greedy decoding of SST-2 dev answers with the KV cache.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_NAMES, initBackend } from '../src/backend/select.js';
import { loadConfig } from '../src/config/load.js';
import { PretrainConfigSchema } from '../src/config/schema.js';
import { loadDataset } from '../src/data/load.js';
import { evaluate } from '../src/eval/evaluate.js';
import { Transformer } from '../src/model/transformer.js';
import { Tokenizer } from '../src/tokenizer/bpe.js';
import { AdamW } from '../src/train/adamw.js';
import { promptBuilder } from '../src/train/prompt.js';
import { BatchSampler } from '../src/train/sampler.js';
import { sftStep, type SftExample } from '../src/train/sft.js';
import { Rng } from '../src/util/rng.js';
import { repoRoot } from '../src/util/paths.js';

const args = await yargs(hideBin(process.argv))
  .option('backend', { choices: BACKEND_NAMES, default: 'auto' as const })
  .option('steps', { type: 'number', default: 10, describe: 'timed steps per measurement (after 2 warm-up steps)' })
  .option('batch', { type: 'number', default: 32 })
  .option('seq', { type: 'number', default: 64 })
  .option('eval-examples', { type: 'number', default: 256 })
  .strict()
  .parseAsync();

const backend = await initBackend(args.backend);
const { config } = loadConfig(PretrainConfigSchema, `${repoRoot()}/configs/pretrain-base.yaml`);
const arch = config.model;
const data = await loadDataset({ name: 'sst2', format: 'auto', text_column: 'text', label_column: 'label', dev_fraction: 0.1, split_seed: 0, max_text_tokens: 96 }, 0);
const tok = Tokenizer.train(data.train.slice(0, 20000).map((e) => e.text), { vocabSize: arch.vocab_size });
const model = Transformer.init({ ...arch, vocab_size: tok.vocabSize }, 1);
const opt = new AdamW(model.params, { lr: 1e-4, weight_decay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant', min_lr_ratio: 1, grad_clip: 1 });
const rng = new Rng(1);

function time(batches: SftExample[][]): { tokensPerS: number; paddedPerS: number; msPerStep: number } {
  for (const b of batches.slice(0, 2)) sftStep(model, opt, b, 1e-4, tok.padId, {});
  let tokens = 0;
  let padded = 0;
  const t0 = performance.now();
  for (const b of batches.slice(2)) {
    tokens += sftStep(model, opt, b, 1e-4, tok.padId, {}).tokens;
    padded += b.length * Math.max(...b.map((e) => e.prompt.length + e.target.length));
  }
  const s = (performance.now() - t0) / 1000;
  const n = batches.length - 2;
  return { tokensPerS: tokens / s, paddedPerS: padded / s, msPerStep: (s * 1000) / n };
}

// lm: random tokens, loss at all positions after the first
const lmBatches = Array.from({ length: args.steps + 2 }, () =>
  Array.from({ length: args.batch }, () => {
    const ids = Array.from({ length: args.seq }, () => 9 + rng.int(tok.vocabSize - 9));
    return { prompt: ids.slice(0, 1), target: ids.slice(1) };
  }),
);
const lm = time(lmBatches);

// sft: real prompts, bucketed as training does
const prompts = promptBuilder(tok, '{text}', 96);
const train = data.train.map((e) => ({ prompt: prompts.prompt(e.text), target: prompts.answerTarget(data.labels[e.label]) }));
const sampler = new BatchSampler(train.map((e) => e.prompt.length + e.target.length), args.batch, 1);
let pos = { epoch: 0, batch: 0 };
const sftBatches: SftExample[][] = [];
for (let i = 0; i < args.steps + 2; i++) {
  const { indices, next } = sampler.next(pos);
  pos = next;
  sftBatches.push(indices.map((j) => train[j]));
}
const sft = time(sftBatches);

const ev = evaluate({ model, tokenizer: tok, prompts, labels: data.labels, batchSize: 64, maxNewTokens: 6, format: 'answer' }, data.dev.slice(0, args['eval-examples']));

const params = model.numParams;
console.log(`backend ${backend.name} (${backend.device}); tfjs ${tf.version.tfjs}; model d${arch.d_model} L${arch.n_layers} H${arch.n_heads} ff${arch.d_ff} vocab ${tok.vocabSize}, ${(params / 1e6).toFixed(2)}M params`);
console.log(`lm   train (batch ${args.batch} x seq ${args.seq}): ${Math.round(lm.tokensPerS)} tokens/s  (${lm.msPerStep.toFixed(0)} ms/step)`);
console.log(`sft  train (SST-2, batch ${args.batch}):        ${Math.round(sft.tokensPerS)} tokens/s  (${Math.round(sft.paddedPerS)} incl. padding, ${sft.msPerStep.toFixed(0)} ms/step)`);
console.log(`eval greedy decode (SST-2 dev):         ${ev.examplesPerSecond.toFixed(1)} examples/s`);
