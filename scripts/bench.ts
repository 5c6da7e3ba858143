/**
 * `npm run bench [-- --backend torch,wasm --steps 20]`: training tokens/s and eval examples/s of the
 * default model (configs/pretrain-base.yaml's architecture, or --d-model/--layers/... overrides) on
 * one or more backends, measured one after another in this process. A benchmark, not a test: it
 * prints numbers and asserts nothing.
 *
 * Four measurements per backend:
 *  - lm:   a causal-LM step on random full-length sequences (batch 32 x seq 64, loss at every position),
 *          the shape of DESIGN.md's engine table; tokens counted = batch x seq;
 *  - sft:  SFT steps on real SST-2 training prompts (bucketed batches, loss on the answer only);
 *  - rl:   training steps of configs/sst2-gta.yaml (mode gta) through gtaRunner itself: P = 8 prompts
 *          (the first sampler batch of the SST-2 training set, the same batch every step) x G = 8
 *          completions, structured decoding with think_max_tokens 4 (17 new tokens), then the GRPO
 *          update plus GTA's guess cross-entropy and gradient combination; rollout tokens counted =
 *          P x G x the completion length decoded (every position, forced tags included);
 *  - eval: greedy decoding of SST-2 dev answers with the KV cache.
 *
 * With --reference (the default when 'torch' is among the backends), the lm step and the rl step are
 * then timed in PyTorch by scripts/torch_reference.py (same model, shapes and thread count: $GTA_THREADS,
 * else every core, as the torch backend; --reference-threads tries several and keeps the fastest), and
 * every backend's speeds are printed as ratios of it. The PyTorch rl step (see torch_reference.py rl)
 * samples the same number of tokens from the same prompts, without structure constraints; it runs
 * twice: doing gta's work (the loss on the completion positions gta trains, see gtaLossPositions, plus
 * GTA's guess cross-entropy and drop_sft_on_conflict), the base of the ratios, and as plain GRPO (the
 * loss on every completion token, no guess cross-entropy), printed beside it.
 *
 * With --nproc N (torch): the lm, sft and rl steps of one process at 1 thread, at the automatic thread
 * choice and at N threads, and of N data-parallel ranks of 1 thread each on loopback (src/parallel:
 * each rank its shard of the same global batch, gradients averaged), one after another; tokens/s
 * count the whole batch.
 */
import { builtinReward } from '../src/task/rewards.js';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import tf from '../src/util/tfjs.cjs';
import { initBackend } from '../src/backend/select.js';
import { BACKEND_NAMES, type BackendName } from '../src/config/schema.js';
import { openblasCoreType } from '../src/backend/torch/native.js';
import { loadConfig } from '../src/config/load.js';
import { PretrainConfigSchema, TrainConfigSchema, type ModelArch } from '../src/config/schema.js';
import { loadDataset } from '../src/data/load.js';
import { evaluate } from '../src/eval/evaluate.js';
import { Transformer } from '../src/model/transformer.js';
import { Tokenizer } from '../src/tokenizer/bpe.js';
import { Trainer } from '../src/train/trainer.js';
import { promptBuilder } from '../src/task/prompt.js';
import { maxStructuredLength, structureSpec } from '../src/task/structure.js';
import { gtaRunner } from '../src/train/gta.js';
import { BatchSampler } from '../src/train/sampler.js';
import type { Prepared } from '../src/train/setup.js';
import { sftStep, type SftExample } from '../src/train/sft.js';
import { Rng } from '../src/util/rng.js';
import { joinWorld, world } from '../src/parallel/world.js';
import { freePort } from '../src/cli/launch.js';
import { repoRoot } from '../src/util/paths.js';

// --hf <folder>: the real-size Hugging Face bench instead (scripts/bench_hf.ts: its rows, its own options)
if (process.argv.includes('--hf')) {
  await (await import('./bench_hf.js')).main(process.argv.slice(2));
  process.exit(0);
}

const args = await yargs(hideBin(process.argv))
  .option('hf', { type: 'string', describe: 'a Hugging Face model folder: time its SFT and GTA steps and peak memory against transformers and TRL instead (scripts/bench_hf.ts: --rows sft,gta,sft+accum2,sft+ckpt,... --reference-rows --steps --batch --prompts --group --threads)' })
  .option('backend', { type: 'string', default: 'auto', describe: `comma-separated, measured in turn: ${BACKEND_NAMES.join(', ')}` })
  .option('steps', { type: 'number', default: 10, describe: 'timed steps per measurement (after 2 warm-up steps)' })
  .option('batch', { type: 'number', default: 32 })
  .option('seq', { type: 'number', default: 64 })
  .option('eval-examples', { type: 'number', default: 256, describe: '0 skips the eval measurement' })
  .option('sft', { type: 'boolean', default: true, describe: 'measure SFT steps on SST-2 (--no-sft skips them)' })
  .option('rl', { type: 'boolean', default: true, describe: 'measure RL steps of configs/sst2-gta.yaml (--no-rl skips them)' })
  .option('d-model', { type: 'number' })
  .option('layers', { type: 'number' })
  .option('heads', { type: 'number' })
  .option('d-ff', { type: 'number' })
  .option('context', { type: 'number', describe: 'max_seq_len' })
  // no yargs default: unset means "on when torch is measured"
  .option('reference', { type: 'boolean', describe: 'also time the lm and rl steps in PyTorch (scripts/torch_reference.py); default: on when torch is measured' })
  .option('reference-device', { choices: ['auto', 'cpu', 'cuda'] as const, default: 'auto' as const, describe: "PyTorch's device; auto: cuda when a backend runs on CUDA/NVIDIA, else cpu" })
  .option('reference-threads', { type: 'string', describe: "comma-separated PyTorch thread counts to time the reference at (e.g. 1,2); the fastest is the one compared against. Default: $GTA_THREADS, else every core (the torch backend's setting)" })
  .option('nproc', { type: 'number', default: 1, describe: 'also time N data-parallel ranks against one process at 1 and N threads (torch)' })
  .option('json', { type: 'boolean', default: false, hidden: true, describe: 'print the first backend\'s result as one JSON line (--nproc runs its measurements so)' })
  .strict()
  .parseAsync();

if (args.nproc > 1 && !process.env.RANK) {
  await compareRanks(args.nproc);
  process.exit(0);
}
await joinWorld();

const backends = args.backend.split(',').map((s) => s.trim()) as BackendName[];
for (const b of backends) if (!BACKEND_NAMES.includes(b)) throw new Error(`--backend: unknown backend '${b}' (expected ${BACKEND_NAMES.join(', ')})`);
const referenceThreadsFlag = args['reference-threads']?.split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 1) throw new Error(`--reference-threads: '${s}' is not a positive integer`);
  return n;
});
// the environment as the user gave it, for the reference (initBackend may set variables of its own, e.g. OMP_WAIT_POLICY)
const userEnv = { ...process.env };

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

// rl: configs/sst2-gta.yaml's step on the first batch its sampler draws (prompt lengths bucketed as
// gtaRunner's `lengths`, i.e. the prompts' lengths; batch = train.batch_size / group_size prompts).
const gtaCfg = loadConfig(TrainConfigSchema, `${repoRoot()}/configs/sst2-gta.yaml`).config;
const G = gtaCfg.rl.group_size;
const rlIndices = new BatchSampler(train.map((e) => e.prompt.length), gtaCfg.train.batch_size / G, gtaCfg.seed).next({ epoch: 0, batch: 0 }).indices;
const rlPrompts = rlIndices.map((i) => train[i].prompt);
const rlSpec = structureSpec(tok, 'gta', data.labels, gtaCfg.rl.think_max_tokens);
/** Tokens a completion decodes at most (17 for sst2 at think_max_tokens 4): the reference samples exactly this many. */
const rlNewTokens = gtaCfg.rl.decoding === 'structured' ? maxStructuredLength(rlSpec) : gtaCfg.rl.max_completion_tokens;
const rlLr = gtaCfg.train.optim.lr;
/** GTA's guess cross-entropy batch (src/train/gta.ts): `prompt <guess>` -> the gold label's tokens. */
const rlGuess = rlIndices.map((i) => ({ prompt: [...train[i].prompt, tok.id('<guess>')], gold: tok.encode(data.labels[data.train[i].label]) }));

/**
 * The completion positions gta's RL loss trains on the longest structured gta completion (17 tokens
 * for sst2): src/train/rl_tokens.ts leaves out the guess span and every forced token (one choice).
 * The PyTorch reference's same-work variant computes its loss (and its head) at these positions only.
 */
function gtaLossPositions(): number[] {
  const { labels, thinkMaxTokens } = rlSpec;
  const label = labels.reduce((a, b) => (b.length > a.length ? b : a));
  const startsWith = (l: number[], pre: number[]) => pre.every((t, i) => l[i] === t);
  // choices after a label prefix: the distinct next tokens of the labels extending it, plus the close tag if it is a whole label
  const choices = (pre: number[]) =>
    new Set(labels.filter((l) => l.length > pre.length && startsWith(l, pre)).map((l) => l[pre.length])).size + (labels.some((l) => l.length === pre.length && startsWith(l, pre)) ? 1 : 0);
  const out: number[] = [];
  let j = label.length + 2 + 1; // <guess> LABEL </guess> (masked), <think> (forced)
  for (let k = 0; k < thinkMaxTokens; k++) out.push(j++); // free text; </think> forced at the limit
  j += 2; // </think>, <answer>
  for (let k = 0; k <= label.length; k++, j++) if (choices(label.slice(0, k)) > 1) out.push(j); // the label, then </answer>
  if (j + 1 !== rlNewTokens) throw new Error(`gtaLossPositions: walked ${j + 1} positions, the structure has ${rlNewTokens}`); // + <eos> (forced)
  return out;
}

interface Speed {
  tokensPerS: number;
  paddedPerS: number;
  msPerStep: number;
}
interface RlSpeed {
  /** P x G x the decoded completion length, per second of rollout. */
  rolloutTokensPerS: number;
  /** Sampled tokens of the completions as gta counts them (perf/rollout_tokens), per second of rollout. */
  realTokensPerS: number;
  meanLength: number;
  rolloutMs: number;
  updateMs: number;
  stepMs: number;
  /** Means of the step's perf/*_s metrics, in ms. */
  phasesMs: Record<string, number>;
}
interface Result {
  name: string;
  device: string;
  lm: Speed;
  sft?: Speed;
  rl?: RlSpeed;
  evalPerS?: number;
}

async function time(trainer: Trainer, batches: SftExample[][]): Promise<Speed> {
  // data-parallel: each rank steps on its shard; the tokens counted are the whole batch's
  for (const b of batches.slice(0, 2)) await sftStep(trainer, world().shard(b), 1e-4, tok.padId, {});
  let tokens = 0;
  let padded = 0;
  const t0 = performance.now();
  for (const b of batches.slice(2)) {
    await sftStep(trainer, world().shard(b), 1e-4, tok.padId, {});
    tokens += b.reduce((a, e) => a + e.prompt.length + e.target.length, 0);
    padded += b.length * Math.max(...b.map((e) => e.prompt.length + e.target.length));
  }
  const s = (performance.now() - t0) / 1000;
  return { tokensPerS: tokens / s, paddedPerS: padded / s, msPerStep: (s * 1000) / (batches.length - 2) };
}

/** gtaRunner's step (mode gta as configs/sst2-gta.yaml sets it) on this backend's model: 2 warm-up steps, then --steps timed, means. */
async function timeRl(backend: Awaited<ReturnType<typeof initBackend>>, model: Transformer, trainer: Trainer): Promise<RlSpeed> {
  const prepared: Prepared = { backend, data, model, tokenizer: tok, prompts, init: 'bench', rewards: gtaCfg.rl.rewards.map(builtinReward), reference: () => model.frozenCopy() };
  const runner = gtaRunner(gtaCfg, prepared, trainer);
  if (runner.batchSize !== rlIndices.length) throw new Error(`rl: gtaRunner batch ${runner.batchSize} != ${rlIndices.length}`);
  const mine = world().shard(rlIndices);
  for (let i = 0; i < 2; i++) await runner.step(mine, rlLr);
  const sums: Record<string, number> = {};
  let stepS = 0;
  let decoded = 0;
  let real = 0;
  for (let i = 0; i < args.steps; i++) {
    const t0 = performance.now();
    const { metrics } = await runner.step(mine, rlLr);
    stepS += (performance.now() - t0) / 1000;
    for (const [k, v] of Object.entries(metrics)) if (/^perf\/.*_s$/.test(k) && !k.endsWith('_per_s')) sums[k] = (sums[k] ?? 0) + v;
    real += (await world().sum([metrics['perf/rollout_tokens']]))[0];
    // structured decoding keeps every row decoding until the longest completion ends (17 unless every row stopped short)
    decoded += rlIndices.length * G * rlNewTokens;
  }
  const rolloutS = sums['perf/rollout_s'];
  const n = args.steps;
  return {
    rolloutTokensPerS: decoded / rolloutS,
    realTokensPerS: real / rolloutS,
    meanLength: real / (n * rlIndices.length * G),
    rolloutMs: (1000 * rolloutS) / n,
    updateMs: (1000 * (stepS - rolloutS)) / n,
    stepMs: (1000 * stepS) / n,
    phasesMs: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k.replace(/^perf\/|_s$/g, ''), (1000 * v) / n])),
  };
}

async function measure(name: BackendName): Promise<Result> {
  const backend = await initBackend(name);
  const model = Transformer.init(arch, 1);
  const trainer = new Trainer(model, { lr: 1e-4, weight_decay: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup_steps: 0, schedule: 'constant', min_lr_ratio: 1, grad_clip: 1 });
  const result: Result = { name: backend.name, device: backend.device, lm: await time(trainer, lmBatches) };
  if (args.sft) result.sft = await time(trainer, sftBatches);
  if (args.rl) result.rl = await timeRl(backend, model, trainer);
  if (args['eval-examples'] > 0) {
    const ev = evaluate({ model, tokenizer: tok, prompts, labels: data.labels, batchSize: 64, maxNewTokens: 6, format: 'answer' }, data.dev.slice(0, args['eval-examples']));
    result.evalPerS = ev.examplesPerSecond;
  }
  trainer.dispose();
  model.dispose();
  console.log(`${result.name.padEnd(10)} (${result.device}): lm ${Math.round(result.lm.tokensPerS)} tokens/s (${result.lm.msPerStep.toFixed(0)} ms/step)` +
    (result.sft ? `; sft ${Math.round(result.sft.tokensPerS)} tokens/s (${Math.round(result.sft.paddedPerS)} incl. padding, ${result.sft.msPerStep.toFixed(0)} ms/step)` : '') +
    (result.evalPerS !== undefined ? `; eval ${result.evalPerS.toFixed(1)} examples/s` : ''));
  if (result.rl) {
    const r = result.rl;
    console.log(`${''.padEnd(10)} rl (gta, ${rlIndices.length} x ${G}, ${rlNewTokens} new tokens, mean completion ${r.meanLength.toFixed(2)}): rollout ${Math.round(r.rolloutTokensPerS)} tokens/s (${Math.round(r.realTokensPerS)} counting only the tokens kept; ${r.rolloutMs.toFixed(0)} ms), ` +
      `update ${r.updateMs.toFixed(0)} ms, step ${r.stepMs.toFixed(0)} ms; per phase (ms): ${Object.entries(r.phasesMs).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
  }
  return result;
}

let params = 0;
{
  // parameter count from the shapes alone (no backend needed)
  for (const s of Transformer.shapes(arch).values()) params += s.reduce((a, b) => a * b, 1);
}
console.log(`tfjs ${tf.version.tfjs}; model d${arch.d_model} L${arch.n_layers} H${arch.n_heads} ff${arch.d_ff} vocab ${arch.vocab_size} ctx ${arch.max_seq_len}, ${(params / 1e6).toFixed(2)}M params; lm batch ${args.batch} x seq ${args.seq}, ${args.steps} timed steps`);
if (args.rl) console.log(`rl: configs/sst2-gta.yaml step, ${rlIndices.length} prompts (${Math.min(...rlPrompts.map((p) => p.length))}-${Math.max(...rlPrompts.map((p) => p.length))} tokens) x group ${G}, ${rlNewTokens} new tokens, lr ${rlLr}`);
const results: Result[] = [];
for (const b of backends) results.push(await measure(b));
if (args.json) {
  if (world().lead) console.log(`RESULT ${JSON.stringify(results[0])}`);
  process.exit(0);
}

const wantRef = args.reference ?? results.some((r) => r.name === 'torch');
// By default the reference runs at the torch backend's CPU thread count: the one its device line
// names, else what src/backend/select.ts initTorch takes ($GTA_THREADS, else every core).
const torchThreads = /cpu, (\d+) threads?/.exec(results.find((r) => r.name === 'torch')?.device ?? '');
const referenceThreads = referenceThreadsFlag ?? [torchThreads ? Number(torchThreads[1]) : Number(process.env.GTA_THREADS) || os.availableParallelism()];
const refDevice = args['reference-device'] !== 'auto' ? args['reference-device'] : results.some((r) => /cuda|nvidia/i.test(r.device)) ? 'cuda' : 'cpu';
const lmRefs: LmReference[] = [];
/** The rl reference doing gta's work (its trained positions, its guess cross-entropy): the ratios' base. */
const rlRefs: RlReference[] = [];
/** Plain GRPO (every completion token in the loss, no guess cross-entropy): shown for comparison. */
const grpoRefs: RlReference[] = [];
const describeRl = (r: RlReference) => (r.guess_ce ? `gta's work: loss on its ${r.loss_tokens} trained tokens per completion + guess CE` : `plain GRPO: loss on all ${r.loss_tokens} tokens`);
if (wantRef) {
  const rlDir = args.rl ? fs.mkdtempSync(path.join(os.tmpdir(), 'gta-bench-')) : undefined;
  const promptsFile = rlDir && path.join(rlDir, 'prompts.json');
  // the same token ids as gta's rollout, so both sides pad and prefill the same prompt lengths
  if (promptsFile) fs.writeFileSync(promptsFile, JSON.stringify({ prompts: rlPrompts, pad_id: tok.padId, guess: rlGuess.map((e) => e.prompt), gold: rlGuess.map((e) => e.gold) }));
  const rlFlags = promptsFile ? ['rl', '--prompts-file', promptsFile, '--group', G, '--new-tokens', rlNewTokens, '--lr', rlLr, '--epsilon', gtaCfg.rl.epsilon] : [];
  // 'same work': gta's trained positions and its guess cross-entropy (only for mode gta's format)
  let sameWork: string[] | undefined;
  try {
    sameWork = ['--loss-positions', gtaLossPositions().join(','), '--guess-ce'];
  } catch (e) {
    console.log(`rl reference: no same-work variant (${(e as Error).message})`);
  }
  try {
    for (const threads of referenceThreads) {
      const lm = reference<LmReference>('lm', [], threads);
      if (!lm) break; // no python with torch, or it failed: said why
      lmRefs.push(lm);
      console.log(`PyTorch ${lm.torch} lm reference, ${lm.device}, ${lm.threads} threads: ${Math.round(lm.tokens_per_s)} tokens/s (${lm.ms_per_step.toFixed(0)} ms/step)`);
      if (!promptsFile) continue;
      for (const [variant, extra] of [['same', sameWork], ['grpo', []]] as const) {
        if (!extra) continue;
        const rl = reference<RlReference>('rl', [...rlFlags, ...extra], threads);
        if (!rl) continue;
        (variant === 'same' ? rlRefs : grpoRefs).push(rl);
        console.log(`PyTorch ${rl.torch} rl reference (${describeRl(rl)}), ${rl.device}, ${rl.threads} threads, prefill ${rl.prefill}: rollout ${Math.round(rl.rollout_tokens_per_s)} tokens/s (${rl.rollout_ms.toFixed(0)} ms), update ${rl.update_ms.toFixed(0)} ms, step ${rl.step_ms.toFixed(0)} ms`);
      }
    }
  } finally {
    if (rlDir) fs.rmSync(rlDir, { recursive: true, force: true });
  }
}
// as a user would: the fastest thread setting of each workload
const ref = lmRefs.length ? lmRefs.reduce((a, b) => (b.tokens_per_s > a.tokens_per_s ? b : a)) : undefined;
const fastestRl = (refs: RlReference[]) => (refs.length ? refs.reduce((a, b) => (b.step_ms < a.step_ms ? b : a)) : undefined);
const rlRef = fastestRl(rlRefs) ?? fastestRl(grpoRefs);
const grpoRef = fastestRl(grpoRefs);

console.log('\n| backend | device | lm tokens/s | vs ' + results[0].name + (ref ? ' | vs PyTorch' : '') + ' |');
console.log('|---|---|---|---|' + (ref ? '---|' : ''));
if (ref) console.log(`| PyTorch ${ref.torch} (reference) | ${ref.device}, ${ref.threads} threads | ${Math.round(ref.tokens_per_s)} | ${(ref.tokens_per_s / results[0].lm.tokensPerS).toFixed(2)}x | 1.00x |`);
for (const r of results) {
  const vsFirst = (r.lm.tokensPerS / results[0].lm.tokensPerS).toFixed(2);
  console.log(`| ${r.name} | ${r.device} | ${Math.round(r.lm.tokensPerS)} | ${vsFirst}x |` + (ref ? ` ${(r.lm.tokensPerS / ref.tokens_per_s).toFixed(2)}x |` : ''));
}

if (args.rl) {
  console.log(`\nrl step (configs/sst2-gta.yaml: ${rlIndices.length} prompts x ${G}, ${rlNewTokens} new tokens)` + (rlRef ? `; vs PyTorch = speed relative to PyTorch (its time / this one's), above 1.00x is faster` : ''));
  console.log('| backend | rollout tokens/s | vs PyTorch | RL step ms | vs PyTorch |');
  console.log('|---|---|---|---|---|');
  for (const r of new Set([rlRef, grpoRef])) {
    if (!r || !rlRef) continue;
    console.log(`| PyTorch ${r.torch} (${r === rlRef ? 'reference, ' : ''}${describeRl(r)}; ${r.device}, ${r.threads} threads) | ${Math.round(r.rollout_tokens_per_s)} | ${(r.rollout_tokens_per_s / rlRef.rollout_tokens_per_s).toFixed(2)}x | ${r.step_ms.toFixed(0)} | ${(rlRef.step_ms / r.step_ms).toFixed(2)}x |`);
  }
  for (const r of results) {
    if (!r.rl) continue;
    const vs = (x: number) => (rlRef ? `${x.toFixed(2)}x` : '-');
    console.log(`| ${r.name} (${r.device}) | ${Math.round(r.rl.rolloutTokensPerS)} | ${vs(r.rl.rolloutTokensPerS / (rlRef?.rollout_tokens_per_s ?? 1))} | ${r.rl.stepMs.toFixed(0)} | ${vs((rlRef?.step_ms ?? 1) / r.rl.stepMs)} |`);
  }
}

interface LmReference {
  tokens_per_s: number;
  ms_per_step: number;
  params: number;
  torch: string;
  device: string;
  threads: number;
}

interface RlReference {
  rollout_tokens_per_s: number;
  rollout_ms: number;
  update_ms: number;
  step_ms: number;
  prefill: string;
  loss_tokens: number;
  guess_ce: boolean;
  params: number;
  torch: string;
  device: string;
  threads: number;
}

/**
 * Runs scripts/torch_reference.py (`sub`: its arguments before the shared ones; none for the lm
 * measurement, its default) at `threads` threads; prints why and returns undefined when it cannot.
 */
function reference<T extends { params: number }>(what: string, sub: (string | number)[], threads: number): T | undefined {
  // Every architecture value explicitly, vocab as the tokenizer made it (it may stop short of the config's).
  const shape = what === 'lm' ? ['--batch', args.batch, '--seq', args.seq] : [];
  const flags = [...sub, '--device', refDevice, '--threads', threads, ...shape, '--steps', args.steps,
    '--d-model', arch.d_model, '--layers', arch.n_layers, '--heads', arch.n_heads, '--d-ff', arch.d_ff, '--vocab', arch.vocab_size, '--context', arch.max_seq_len].map(String);
  // $PYTHON, else python3; then Debian's /usr/bin/python3 (python3-torch), since a pyenv/venv python3 on PATH often lacks torch
  const pythons = [...new Set([process.env.PYTHON || 'python3', '/usr/bin/python3'])];
  const tried: string[] = [];
  // the same OpenBLAS kernels as the torch backend (see openblasCoreType)
  const env = { ...userEnv, OPENBLAS_CORETYPE: openblasCoreType() ?? '' };
  for (const py of pythons) {
    const r = spawnSync(py, [`${repoRoot()}/scripts/torch_reference.py`, ...flags], { encoding: 'utf8', timeout: 30 * 60_000, env });
    const why = (r.stderr ?? '').trim().split('\n').pop() || r.error?.message || `exit ${r.status ?? r.signal}`;
    // not found, or exit 3 = the script's "no torch here": try the next python
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' || r.status === 3) {
      tried.push(`${py}: ${r.error ? 'not found' : 'no torch'}`);
      continue;
    }
    if (r.status !== 0) return void console.log(`torch ${what} reference failed (${py}): ${why}`);
    let out: T;
    try {
      out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    } catch {
      return void console.log(`torch ${what} reference printed no JSON line (${py}): ${why}`);
    }
    // the same parameter count is the check that the two models are the same architecture
    if (out.params !== params) console.log(`PARAM MISMATCH (${what}): tfjs ${params}, torch ${out.params}`);
    return out;
  }
  console.log(`torch reference skipped: no python with PyTorch (${tried.join('; ')}; set $PYTHON)`);
  return undefined;
}

/** --nproc N: one process at 1 and N threads, then N ranks of 1 thread, each a child bench run (--json). */
async function compareRanks(n: number): Promise<void> {
  const passOn = ['--backend', 'torch', '--steps', String(args.steps), '--batch', String(args.batch), '--seq', String(args.seq), '--eval-examples', '0', '--no-reference', '--json', ...(args.sft ? [] : ['--no-sft']), ...(args.rl ? [] : ['--no-rl'])];
  const script = new URL(import.meta.url).pathname;
  const run = (env: Record<string, string>) =>
    new Promise<Result>((resolve, reject) => {
      const child = spawn(process.execPath, [script, ...passOn], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code) => {
        const line = out.split('\n').find((l) => l.startsWith('RESULT '));
        if (code === 0 && line) resolve(JSON.parse(line.slice(7)) as Result);
        else if (code !== 0) reject(new Error(`bench child (${JSON.stringify(env)}) exited with code ${code}`));
        else resolve(undefined as unknown as Result); // a rank past the first prints nothing
      });
    });
  const port = await freePort();
  const settings: [string, () => Promise<Result>][] = [
    ['1 process, 1 thread', () => run({ GTA_THREADS: '1' })],
    // GTA_THREADS empty: the count torch/threads.ts chose for this machine
    ['1 process, automatic threads', () => run({ GTA_THREADS: '' })],
    [`1 process, ${n} threads`, () => run({ GTA_THREADS: String(n) })],
    [`${n} ranks, 1 thread each`, async () => (await Promise.all(Array.from({ length: n }, (_, r) => run({ GTA_THREADS: '1', RANK: String(r), WORLD_SIZE: String(n), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) }))))[0]],
  ];
  const rows: [string, Result][] = [];
  for (const [name, measureIt] of settings) {
    rows.push([name, await measureIt()]);
    console.log(`${name}: done`);
  }
  const baseRow = rows[0][1];
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
  console.log(`\ndata-parallel (torch, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores; ${args.steps} timed steps; ratios against 1 process at 1 thread)`);
  console.log('| setting | lm tokens/s | vs | sft tokens/s | vs | rl step ms | vs |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [name, r] of rows) {
    const sft = r.sft && baseRow.sft ? `${Math.round(r.sft.tokensPerS)} | ${x(r.sft.tokensPerS, baseRow.sft.tokensPerS)}` : '– | –';
    const rl = r.rl && baseRow.rl ? `${r.rl.stepMs.toFixed(0)} | ${x(baseRow.rl.stepMs, r.rl.stepMs)}` : '– | –';
    console.log(`| ${name} | ${Math.round(r.lm.tokensPerS)} | ${x(r.lm.tokensPerS, baseRow.lm.tokensPerS)} | ${sft} | ${rl} |`);
  }
}
