/**
 * What one training step is in each mode. The loop in finetune.ts only knows this interface: a list of
 * training items (with lengths for bucketing), how many go in a batch, and a step that returns metrics.
 */
import type { TrainConfig } from '../config/schema.js';
import { Rng, type RngState } from '../util/rng.js';
import type { AdamW } from './adamw.js';
import { rlStep, type RlExample } from './rl.js';
import type { Prepared } from './setup.js';
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
  const { model, tokenizer, prompts, data } = p;
  let dropoutRng = new Rng(cfg.seed ^ 0x5eed);
  if (cfg.mode === 'sft') {
    const train = data.train.map((e) => ({ prompt: prompts.prompt(e.text), target: prompts.answerTarget(data.labels[e.label]) }));
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
  const format = cfg.mode === 'gta' ? 'gta' : 'rl';
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
