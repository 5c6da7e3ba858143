/**
 * `npm run bench [-- --backend torch,wasm --steps 20]`: training tokens/s and eval examples/s of the
 * default model (configs/pretrain-base.yaml's architecture, or --d-model/--layers/... overrides) on
 * one or more backends, measured one after another in this process. A benchmark, not a test: it
 * prints numbers and asserts nothing.
 *
 * Three measurements per backend:
 *  - lm:   a causal-LM step on random full-length sequences (batch 32 x seq 64, loss at every position),
 *          the shape of DESIGN.md's engine table; tokens counted = batch x seq;
 *  - sft:  SFT steps on real SST-2 training prompts (bucketed batches, loss on the answer only);
 *  - eval: greedy decoding of SST-2 dev answers with the KV cache.
 *
 * With --reference (the default when 'torch' is among the backends), the lm step is then timed in
 * PyTorch by scripts/torch_reference.py (same model, step, shapes and thread count), and every
 * backend's lm speed is printed as a ratio of it.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend/select.js';
import { BACKEND_NAMES, type BackendName } from '../src/config/schema.js';
import { openblasCoreType } from '../src/backend/torch/native.js';
import { loadConfig } from '../src/config/load.js';
import { PretrainConfigSchema, type ModelArch } from '../src/config/schema.js';
import { loadDataset } from '../src/data/load.js';
import { evaluate } from '../src/eval/evaluate.js';
import { Transformer } from '../src/model/transformer.js';
import { Tokenizer } from '../src/tokenizer/bpe.js';
import { AdamW } from '../src/train/adamw.js';
import { promptBuilder } from '../src/task/prompt.js';
import { BatchSampler } from '../src/train/sampler.js';
import { sftStep, type SftExample } from '../src/train/sft.js';
import { Rng } from '../src/util/rng.js';
import { repoRoot } from '../src/util/paths.js';

const args = await yargs(hideBin(process.argv))
  .option('backend', { type: 'string', default: 'auto', describe: `comma-separated, measured in turn: ${BACKEND_NAMES.join(', ')}` })
  .option('steps', { type: 'number', default: 10, describe: 'timed steps per measurement (after 2 warm-up steps)' })
  .option('batch', { type: 'number', default: 32 })
  .option('seq', { type: 'number', default: 64 })
  .option('eval-examples', { type: 'number', default: 256, describe: '0 skips the eval measurement' })
  .option('sft', { type: 'boolean', default: true, describe: 'measure SFT steps on SST-2 (--no-sft skips them)' })
  .option('d-model', { type: 'number' })
  .option('layers', { type: 'number' })
  .option('heads', { type: 'number' })
  .option('d-ff', { type: 'number' })
  .option('context', { type: 'number', describe: 'max_seq_len' })
  // no yargs default: unset means "on when torch is measured"
  .option('reference', { type: 'boolean', describe: 'also time the lm step in PyTorch (scripts/torch_reference.py); default: on when torch is measured' })
  .option('reference-device', { choices: ['auto', 'cpu', 'cuda'] as const, default: 'auto' as const, describe: "PyTorch's device; auto: cuda when a backend runs on CUDA/NVIDIA, else cpu" })
  .strict()
  .parseAsync();

const backends = args.backend.split(',').map((s) => s.trim()) as BackendName[];
for (const b of backends) if (!BACKEND_NAMES.includes(b)) throw new Error(`--backend: unknown backend '${b}' (expected ${BACKEND_NAMES.join(', ')})`);

const { config } = loadConfig(PretrainConfigSchema, `${repoRoot()}/configs/pretrain-base.yaml`);
const base = config.model;
const data = await loadDataset({ name: 'sst2', format: 'auto', text_column: 'text', label_column: 'label', dev_fraction: 0.1, split_seed: 0, max_text_tokens: 96 }, 0);
const tok = Tokenizer.train(data.train.slice(0, 20000).map((e) => e.text), { vocabSize: base.vocab_size });
const arch: ModelArch = {
  ...base,
  vocab_size: tok.vocabSize,
  d_model: args['d-model'] ?? base.d_model,
  n_layers: args.layers ?? base.n_layers,
  n_heads: args.heads ?? base.n_heads,
  d_ff: args['d-ff'] ?? base.d_ff,
  max_seq_len: args.context ?? Math.max(base.max_seq_len, args.seq),
};

// The same batches for every backend: lm on random tokens (loss at all positions after the first),
// sft on real prompts bucketed as training does.
const rng = new Rng(1);
const lmBatches = Array.from({ length: args.steps + 2 }, () =>
  Array.from({ length: args.batch }, () => {
    const ids = Array.from({ length: args.seq }, () => 9 + rng.int(tok.vocabSize - 9));
    return { prompt: ids.slice(0, 1), target: ids.slice(1) };
  }),
);
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

interface Speed {
  tokensPerS: number;
  paddedPerS: number;
  msPerStep: number;
}
interface Result {
  name: string;
  device: string;
  lm: Speed;
  sft?: Speed;
  evalPerS?: number;
}

function time(model: Transformer, opt: AdamW, batches: SftExample[][]): Speed {
  for (const b of batches.slice(0, 2)) sftStep(model, opt, b, 1e-4, tok.padId, {});
  let tokens = 0;
  let padded = 0;
  const t0 = performance.now();
  for (const b of batches.slice(2)) {
    tokens += sftStep(model, opt, b, 1e-4, tok.padId, {}).tokens;
    padded += b.length * Math.max(...b.map((e) => e.prompt.length + e.target.length));
  }
  const s = (performance.now() - t0) / 1000;
  return { tokensPerS: tokens / s, paddedPerS: padded / s, msPerStep: (s * 1000) / (batches.length - 2) };
}

async function measure(name: BackendName): Promise<Result> {
  const backend = await initBackend(name);
  const model = Transformer.init(arch, 1);
  const opt = new AdamW(model.params, { lr: 1e-4, weight_decay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant', min_lr_ratio: 1, grad_clip: 1 });
  const result: Result = { name: backend.name, device: backend.device, lm: time(model, opt, lmBatches) };
  if (args.sft) result.sft = time(model, opt, sftBatches);
  if (args['eval-examples'] > 0) {
    const ev = evaluate({ model, tokenizer: tok, prompts, labels: data.labels, batchSize: 64, maxNewTokens: 6, format: 'answer' }, data.dev.slice(0, args['eval-examples']));
    result.evalPerS = ev.examplesPerSecond;
  }
  opt.dispose();
  model.dispose();
  console.log(`${result.name.padEnd(10)} (${result.device}): lm ${Math.round(result.lm.tokensPerS)} tokens/s (${result.lm.msPerStep.toFixed(0)} ms/step)` +
    (result.sft ? `; sft ${Math.round(result.sft.tokensPerS)} tokens/s (${Math.round(result.sft.paddedPerS)} incl. padding, ${result.sft.msPerStep.toFixed(0)} ms/step)` : '') +
    (result.evalPerS !== undefined ? `; eval ${result.evalPerS.toFixed(1)} examples/s` : ''));
  return result;
}

let params = 0;
{
  // parameter count from the shapes alone (no backend needed)
  for (const s of Transformer.shapes(arch).values()) params += s.reduce((a, b) => a * b, 1);
}
console.log(`tfjs ${tf.version.tfjs}; model d${arch.d_model} L${arch.n_layers} H${arch.n_heads} ff${arch.d_ff} vocab ${arch.vocab_size} ctx ${arch.max_seq_len}, ${(params / 1e6).toFixed(2)}M params; lm batch ${args.batch} x seq ${args.seq}, ${args.steps} timed steps`);
const results: Result[] = [];
for (const b of backends) results.push(await measure(b));

const ref = (args.reference ?? results.some((r) => r.name === 'torch')) ? reference() : undefined;
console.log('\n| backend | device | lm tokens/s | vs ' + results[0].name + (ref ? ' | vs PyTorch' : '') + ' |');
console.log('|---|---|---|---|' + (ref ? '---|' : ''));
if (ref) console.log(`| PyTorch ${ref.torch} (reference) | ${ref.device}, ${ref.threads} threads | ${Math.round(ref.tokens_per_s)} | ${(ref.tokens_per_s / results[0].lm.tokensPerS).toFixed(2)}x | 1.00x |`);
for (const r of results) {
  const vsFirst = (r.lm.tokensPerS / results[0].lm.tokensPerS).toFixed(2);
  console.log(`| ${r.name} | ${r.device} | ${Math.round(r.lm.tokensPerS)} | ${vsFirst}x |` + (ref ? ` ${(r.lm.tokensPerS / ref.tokens_per_s).toFixed(2)}x |` : ''));
}

interface Reference {
  tokens_per_s: number;
  ms_per_step: number;
  params: number;
  torch: string;
  device: string;
  threads: number;
}

/** Runs the PyTorch reference for the lm measurement; prints why and returns undefined when it cannot. */
function reference(): Reference | undefined {
  const device = args['reference-device'] !== 'auto' ? args['reference-device'] : results.some((r) => /cuda|nvidia/i.test(r.device)) ? 'cuda' : 'cpu';
  const threads = os.availableParallelism();
  // Every architecture value explicitly, vocab as the tokenizer made it (it may stop short of the config's).
  const flags = ['--device', device, '--threads', threads, '--batch', args.batch, '--seq', args.seq, '--steps', args.steps,
    '--d-model', arch.d_model, '--layers', arch.n_layers, '--heads', arch.n_heads, '--d-ff', arch.d_ff, '--vocab', arch.vocab_size, '--context', arch.max_seq_len].map(String);
  // $PYTHON, else python3; then Debian's /usr/bin/python3 (python3-torch), since a pyenv/venv python3 on PATH often lacks torch
  const pythons = [...new Set([process.env.PYTHON || 'python3', '/usr/bin/python3'])];
  const tried: string[] = [];
  // the same OpenBLAS kernels as the torch backend (see openblasCoreType)
  const env = { ...process.env, OPENBLAS_CORETYPE: openblasCoreType() ?? '' };
  for (const py of pythons) {
    const r = spawnSync(py, [`${repoRoot()}/scripts/torch_reference.py`, ...flags], { encoding: 'utf8', timeout: 30 * 60_000, env });
    const why = (r.stderr ?? '').trim().split('\n').pop() || r.error?.message || `exit ${r.status ?? r.signal}`;
    // not found, or exit 3 = the script's "no torch here": try the next python
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' || r.status === 3) {
      tried.push(`${py}: ${r.error ? 'not found' : 'no torch'}`);
      continue;
    }
    if (r.status !== 0) return void console.log(`torch reference failed (${py}): ${why}`);
    let out: Reference;
    try {
      out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    } catch {
      return void console.log(`torch reference printed no JSON line (${py}): ${why}`);
    }
    // the same parameter count is the check that the two models are the same architecture
    if (out.params !== params) console.log(`PARAM MISMATCH: tfjs ${params}, torch ${out.params}`);
    return out;
  }
  console.log(`torch reference skipped: no python with PyTorch (${tried.join('; ')}; set $PYTHON)`);
  return undefined;
}
