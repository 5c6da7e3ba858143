/**
 * What one training step is in each mode. The loop in finetune.ts only knows this interface: a list of
 * training items (with lengths for bucketing), how many go in a batch, and a step that returns metrics.
 */
import type { TrainConfig } from '../config/schema.js';
import { Rng, type RngState } from '../util/rng.js';
import type { AdamW } from './adamw.js';
import { rlStep, type RlExample } from './rl.js';
import type { Prepared } from './setup.js';
import { BatchSampler, type SamplerPosition } from './sampler.js';
import { sftStep } from './sft.js';
import { structureSpec } from './structure.js';

export interface StepOutput {
  /** Numeric metrics of this step, averaged over the log window by the loop. */
  metrics: Record<string, number>;
  /** Tokens processed (prompt + completion) in this step. */
  tokens: number;
  /** A few completions to keep in samples.jsonl (RL and GTA). */
  samples?: Record<string, unknown>[];
}

export interface ModeRunner {
  /** Length of each training item, for length-bucketed batches. */
  lengths: number[];
  /** Items per batch (prompts, for RL and GTA: batch_size / group_size). */
  batchSize: number;
  step(indices: number[], lr: number): StepOutput;
  /** What a resumed run needs (RNG states, counters); saved in the checkpoint's trainer state. */
  state(): Record<string, unknown>;
  restore(state: Record<string, unknown>): void;
}

export function modeRunner(cfg: TrainConfig, p: Prepared, optimizer: AdamW): ModeRunner {
  if (cfg.mode === 'sft') return sftRunner(cfg, p, optimizer, (label) => p.prompts.answerTarget(label));
  if (cfg.mode === 'sft_then_rl') return sftThenRlRunner(cfg, p, optimizer);
  return rlRunner(cfg, p, optimizer, cfg.mode);
}

/** SFT with cross-entropy on `target(label)` after the prompt. */
function sftRunner(cfg: TrainConfig, p: Prepared, optimizer: AdamW, target: (label: string) => number[]): ModeRunner {
  const { model, tokenizer, prompts, data } = p;
  let dropoutRng = new Rng(cfg.seed ^ 0x5eed);
  const train = data.train.map((e) => ({ prompt: prompts.prompt(e.text), target: target(data.labels[e.label]) }));
  return {
    lengths: train.map((e) => e.prompt.length + e.target.length),
    batchSize: cfg.train.batch_size,
    step(indices, lr) {
      const r = sftStep(model, optimizer, indices.map((i) => train[i]), lr, tokenizer.padId, { dropout: cfg.train.dropout, rng: dropoutRng });
      return { metrics: { 'train/loss_sft': r.loss, 'train/grad_norm': r.gradNorm }, tokens: r.tokens };
    },
    state: () => ({ dropout_rng: dropoutRng.state() }),
    restore: (st) => void (dropoutRng = new Rng(st.dropout_rng as RngState)),
  };
}

/** GRPO on `<think>...</think><answer>LABEL</answer>` (rl) or the GTA hybrid (gta). */
function rlRunner(cfg: TrainConfig, p: Prepared, optimizer: AdamW, format: 'rl' | 'gta'): ModeRunner {
  const { model, tokenizer, prompts, data } = p;
  const spec = structureSpec(tokenizer, format, data.labels, cfg.rl.think_max_tokens);
  const train: RlExample[] = data.train.map((e) => ({ prompt: prompts.prompt(e.text), gold: e.label, goldTokens: tokenizer.encode(data.labels[e.label]) }));
  let sampleRng = new Rng(cfg.seed ^ 0x5a3b1e);
  const ref = cfg.rl.beta > 0 ? p.reference() : undefined;
  let conflicts = 0;
  let steps = 0;
  return {
    lengths: train.map((e) => e.prompt.length),
    batchSize: cfg.train.batch_size / cfg.rl.group_size,
    step(indices, lr) {
      const batch = indices.map((i) => train[i]);
      const r = rlStep(
        { model, ref, optimizer, spec, format, rl: cfg.rl, gta: cfg.gta, padId: tokenizer.padId, guessOpen: tokenizer.id('<guess>'), rng: sampleRng },
        batch,
        lr,
      );
      steps++;
      if (r.conflict) conflicts++;
      const metrics: Record<string, number> = { ...r.metrics, 'perf/rollout_tokens': r.rolloutTokens };
      if (format === 'gta') metrics['grad/conflict_rate'] = conflicts / steps;
      const samples = r.completions.slice(0, 4).map((c, k) => ({
        text: data.train[indices[Math.floor(k / cfg.rl.group_size)]].text,
        gold: data.labels[batch[Math.floor(k / cfg.rl.group_size)].gold],
        completion: tokenizer.decode(c.tokens),
        reward: r.rewards[k],
      }));
      return { metrics, tokens: r.tokens, samples };
    },
    state: () => ({ sampling_rng: sampleRng.state(), conflicts, steps }),
    restore(st) {
      sampleRng = new Rng(st.sampling_rng as RngState);
      conflicts = st.conflicts as number;
      steps = st.steps as number;
    },
  };
}

/**
 * SFT for sft_then_rl.sft_steps steps on RL's format with an empty think
 * (`<think></think><answer>LABEL</answer>`), then GRPO from there: a baseline the paper lacks. The loop's
 * sampler draws RL batches (batch_size / group_size prompts); the SFT phase draws its own batches of
 * batch_size examples from a second seeded sampler, whose position is saved with the rest of the state.
 * With rl.beta > 0 the KL reference is the base model (the init checkpoint), as in mode rl.
 */
function sftThenRlRunner(cfg: TrainConfig, p: Prepared, optimizer: AdamW): ModeRunner {
  const think = [p.tokenizer.id('<think>'), p.tokenizer.id('</think>')];
  const sft = sftRunner(cfg, p, optimizer, (label) => [...think, ...p.prompts.answerTarget(label)]);
  const rl = rlRunner(cfg, p, optimizer, 'rl');
  const sftSampler = new BatchSampler(sft.lengths, sft.batchSize, cfg.seed ^ 0x5f7);
  let sftPos: SamplerPosition = { epoch: 0, batch: 0 };
  let steps = 0;
  return {
    lengths: rl.lengths,
    batchSize: rl.batchSize,
    step(indices, lr) {
      steps++;
      if (steps > cfg.sft_then_rl.sft_steps) return rl.step(indices, lr);
      const { indices: batch, next } = sftSampler.next(sftPos);
      sftPos = next;
      return sft.step(batch, lr);
    },
    state: () => ({ steps, sft_position: sftPos, sft: sft.state(), rl: rl.state() }),
    restore(st) {
      steps = st.steps as number;
      sftPos = st.sft_position as SamplerPosition;
      sft.restore(st.sft as Record<string, unknown>);
      rl.restore(st.rl as Record<string, unknown>);
    },
  };
}
