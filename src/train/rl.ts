/**
 * Mode rl (GRPO), and the pieces GTA builds on: sample G completions per prompt, score them, normalise
 * advantages in each group, then update the policy with the clipped surrogate on the completion tokens
 * (rl_tokens.ts picks which). GTA (gta.ts) takes the rollout and the RL gradients (PolicyGradients)
 * from here and adds its guess's.
 */
import tf from '../util/tfjs.cjs';
import { variableGrads } from '../backend/lean_grads.js';
import { LOSS_TYPES, type GrpoLossType } from '../config/grpo_losses.js';
import type { RlConfig, TrainConfig } from '../config/schema.js';
import { buildContinuation, disposeInput } from '../model/batch.js';
import type { Transformer } from '../model/transformer.js';
import { gatherRows } from '../backend/gather_rows.js';
import { smallWork } from '../backend/select.js';
import { sampleCompletions, type Completion } from '../sample/rollout.js';
import { builtinReward, scoreRewards, type Reward, type RewardInput, type Scored } from '../task/rewards.js';
import { exampleRow } from '../data/load.js';
import { maxStructuredLength, parseCompletion, structureSpec, type CompletionFormat, type StructureSpec } from '../task/structure.js';
import { mean, stdUnbiased } from '../util/stats.js';
import { Clock } from '../util/clock.js';
import { Rng, STREAMS, type RngState } from '../util/rng.js';
import { world } from '../parallel/world.js';
import { stopGradient } from '../util/tf_extra.js';
import type { Grads } from './grad_constraint.js';
import { addGrads, microBatches, weighted } from './accumulate.js';
import { groupAdvantages, grpoLoss } from './grpo.js';
import type { Runner, StepOutput } from './loop.js';
import { rlTokenLogp, rlTokenTensors, selectRlTokens, trainedLength, type RlTokens } from './rl_tokens.js';
import type { Prepared } from './setup.js';
import type { Trainer } from './trainer.js';
import { parseState, RlStateSchema, type RlState } from './trainer_state.js';

export interface RlExample {
  /** Its index in the training split (which seeds its completions' stream). */
  index: number;
  prompt: number[];
  gold: number;
  /** The gold label's tokens: the target of GTA's guess cross-entropy. */
  goldTokens: number[];
  /** The example's whole row (for reward modules). */
  row?: Record<string, unknown>;
}

export interface RlContext {
  model: Transformer;
  /** The frozen initial model, when rl.beta > 0. */
  ref?: Transformer;
  spec: StructureSpec;
  format: CompletionFormat;
  /** GTA(RL): the guess span is in the RL loss (gta.guess_loss rl) instead of masked out of it. */
  guessInRl?: boolean;
  rl: RlConfig;
  padId: number;
  rng: Rng;
  /** Micro-batches of an update (train.grad_accum_steps). */
  accumSteps: number;
  /** rl.rewards loaded (reward modules imported); default the built-ins rl.rewards names. */
  rewards?: Reward[];
  /** A completion's think span and whole text, decoded: what reward modules read. */
  describe?: (tokens: number[]) => { think: string; completion: string };
}

/** A scored generation batch: every prompt repeated G times, one completion each. */
export interface Rollout {
  /** The distinct prompts; completion i continues unique[floor(i / group)]. */
  unique: number[][];
  group: number;
  completions: Completion[];
  scored: Scored;
  advantages: number[];
  metrics: Record<string, number>;
  /** The reward components per completion, behind their mean and std metrics (StepOutput.pool). */
  pool: Record<string, number[]>;
  rolloutTokens: number;
}

/** Samples G completions per prompt, scores them and normalises their advantages within each group. */
export function rollout(ctx: RlContext, batch: RlExample[]): Rollout {
  const { rl, spec } = ctx;
  const G = rl.group_size;
  // each prompt's completions from its own stream, so they are the same whichever rank samples them
  const draw = ctx.rng.nextU32();
  const t0 = performance.now();
  const completions = sampleCompletions(ctx.model, batch.map((e) => e.prompt), {
    spec,
    decoding: rl.decoding,
    temperature: rl.temperature,
    topP: rl.top_p,
    maxNewTokens: rl.max_completion_tokens,
    greedy: false,
    repeat: G,
    rng: batch.map((e) => STREAMS.promptStream(draw, e.index)),
    padId: ctx.padId,
  });
  const rolloutSeconds = (performance.now() - t0) / 1000;
  const rolloutTokens = completions.reduce((a, c) => a + c.tokens.length, 0);
  const inputs = completions.map((c, i): RewardInput => {
    const e = batch[Math.floor(i / G)];
    return { parsed: parseCompletion(spec, c.tokens), gold: e.gold, row: e.row, text: () => ctx.describe?.(c.tokens) ?? { think: '', completion: '' } };
  });
  const rewards = ctx.rewards ?? rl.rewards.map(builtinReward);
  const scored = scoreRewards(inputs, rewards);
  const adv = groupAdvantages(scored.total, G, rl.scale_rewards);
  const N = completions.length;
  const metrics: Record<string, number> = {
    'reward/total/mean': mean(scored.total),
    // TRL's reward_std: the mean of each group's (unbiased) std
    'reward/total/std': mean(adv.groupStd),
    'reward/frac_zero_std': adv.fracZeroStd,
    'completions/mean_length': rolloutTokens / N,
    'completions/clipped_ratio': completions.filter((c) => c.truncated).length / N,
    'perf/rollout_tokens_per_s': rolloutTokens / Math.max(rolloutSeconds, 1e-9),
    'perf/rollout_s': rolloutSeconds,
  };
  const pool: Record<string, number[]> = {};
  for (const { name } of rewards) {
    metrics[`reward/${name}/mean`] = mean(scored.components[name]);
    metrics[`reward/${name}/std`] = stdUnbiased(scored.components[name]);
    pool[`reward/${name}`] = scored.components[name];
  }
  return { unique: batch.map((e) => e.prompt), group: G, completions, scored, advantages: adv.advantages, metrics, pool, rolloutTokens };
}

/**
 * The gradients of L_RL on one rollout, one set per update of rl.num_iterations (PPO-style reuse: the
 * ratio is against the log-probabilities at sampling time, computed once here, as the reference
 * model's are), each the mean over every rank's shard. `active` is false when no rank has a trainable
 * completion token: then the step applies nothing.
 */
export class PolicyGradients {
  /** perf/*_s: the old and reference log-probabilities, then the backward passes so far. */
  readonly times = { 'perf/logp_s': 0, 'perf/backward_s': 0 };
  private constructor(
    private readonly ctx: RlContext,
    private readonly parts: { cont: ReturnType<typeof buildContinuation>; sel: RlTokens; advantages: number[] }[],
    private readonly batches: { b?: PolicyBatch; old?: tf.Tensor2D; refLogp?: tf.Tensor2D; adv: tf.Tensor1D; share: number; M: number }[],
    /** Selected tokens on this rank, and the loss's normaliser over its whole batch. */
    private readonly M: number,
    private readonly lw: number,
    readonly active: boolean,
  ) {}

  static async start(ctx: RlContext, r: Rollout): Promise<PolicyGradients> {
    const { model, rl } = ctx;
    const clock = new Clock();
    const pick = { format: ctx.format, guessInRl: ctx.guessInRl, maskTruncated: rl.mask_truncated_completions, spec: ctx.spec, vocab: model.arch.vocab_size };
    // micro-batches of whole prompt groups (train.grad_accum_steps), each prompt once with its completions
    // after it (as the rollout decoded them), up to the last token the loss trains: later tokens (forced
    // closing tags, EOS) predict nothing it reads
    const G = r.group;
    const parts = microBatches(r.unique.map((_, i) => i), ctx.accumSteps).map((prompts) => {
      const from = prompts[0] * G;
      const completions = r.completions.slice(from, from + prompts.length * G);
      const trained = trainedLength(completions, pick);
      const cont = buildContinuation(prompts.map((i) => r.unique[i]), completions.map((c) => c.tokens.slice(0, trained)), G, ctx.padId);
      const sel = selectRlTokens(completions, cont.rowOf, pick);
      return { cont, sel, advantages: r.advantages.slice(from, from + completions.length) };
    });
    const M = parts.reduce((a, p) => a + p.sel.M, 0);
    // a rank whose shard has no trainable token still takes part in the others' updates (with weight 0)
    const [selected] = await world().sum([M]);
    // the loss's normaliser over this rank's whole batch; each micro-batch's loss is weighted by its share
    const lw = parts.reduce((a, p) => a + lossWeight(rl.loss_type, p.sel), 0);
    const batches =
      selected > 0
        ? parts.map((p) => {
            const b = p.sel.M > 0 ? new PolicyBatch(p.cont, G, p.sel, rl.temperature) : undefined;
            const old = b && rl.num_iterations > 1 ? tf.tidy(() => b.logp(model).logp) : undefined;
            const refLogp = b && ctx.ref && rl.beta > 0 ? tf.tidy(() => b.logp(ctx.ref!).logp) : undefined;
            return { b, old, refLogp, adv: tf.tensor1d(p.advantages), share: parts.length === 1 ? 1 : lossWeight(rl.loss_type, p.sel) / lw, M: p.sel.M };
          })
        : [];
    // forces the lazy results: on an asynchronous backend the time would otherwise land in the next phase
    for (const t of batches.flatMap((m) => [m.old, m.refLogp])) t?.dataSync();
    const u = new PolicyGradients(ctx, parts, batches, M, lw, selected > 0);
    u.times['perf/logp_s'] = clock.lap();
    return u;
  }

  /**
   * The next update's gradients of L_RL (the caller disposes them), its loss, and its clip ratio, KL
   * and entropy as means over every rank's selected tokens.
   */
  async next(): Promise<{ grads: Grads; loss: number; metrics: Record<string, number> }> {
    const { model, rl } = this.ctx;
    const clock = new Clock();
    let local: Grads | undefined;
    // this rank's loss, and the clip ratio, KL and entropy as means over its selected tokens
    const sums = { loss: 0, clip: 0, kl: 0, entropy: 0 };
    for (const { b, old, refLogp, adv, share, M: m } of this.batches) {
      if (!b) continue;
      let side: tf.Tensor[] = [];
      const { value, grads } = variableGrads(() => {
        const { logp, entropy } = b.logp(model);
        const g = grpoLoss({
          logp,
          oldLogp: old ?? stopGradient(logp),
          refLogp,
          adv,
          mask: b.t.mask,
          eps: rl.epsilon,
          epsHigh: rl.epsilon_high ?? rl.epsilon,
          beta: rl.beta,
          lossType: rl.loss_type,
          // dr_grpo's constant normaliser: the longest completion the decoding can produce (TRL's max_completion_length)
          maxCompletionLength: rl.decoding === 'structured' ? maxStructuredLength(this.ctx.spec) : rl.max_completion_tokens,
        });
        side = [tf.keep(g.clipRatio), tf.keep(g.kl), tf.keep(tf.mean(entropy))];
        return weighted(g.loss, share);
      });
      const [loss, clip, kl, entropy] = [value, ...side].map((t) => t.dataSync()[0]);
      tf.dispose([value, ...side]);
      sums.loss += loss;
      // (a whole batch's own means, unscaled: one micro-batch computes exactly as before)
      const part = (x: number) => (m === this.M ? x : (x * m) / this.M);
      sums.clip += part(clip);
      sums.kl += part(kl);
      sums.entropy += part(entropy);
      local = addGrads(local, model.byParamName(grads));
    }
    this.times['perf/backward_s'] += clock.lap();
    // the mean over every rank's shard: the loss by its normaliser, the token metrics by selected tokens
    const { M, lw } = this;
    const reduced = await world().meanGrads(local ?? zeroGrads(model), lw, { loss: [sums.loss, lw], clip: [sums.clip, M], kl: [sums.kl, M], entropy: [sums.entropy, M] });
    const { loss, clip, kl, entropy } = reduced.scalars;
    return { grads: reduced.grads, loss, metrics: { clip_ratio: clip, kl, entropy } };
  }

  dispose(): void {
    for (const m of this.batches) {
      m.b?.dispose();
      tf.dispose([m.adv, ...(m.old ? [m.old] : []), ...(m.refLogp ? [m.refLogp] : [])]);
    }
    for (const p of this.parts) {
      disposeInput(p.cont.prompt);
      disposeInput(p.cont.completion);
    }
  }
}

/**
 * Mode rl's update: rl.num_iterations optimizer steps on one rollout with the GRPO loss. Logs the mean
 * over the updates of each one's metrics (loss, KL, clip ratio, entropy, gradient norm), as TRL
 * averages them, and each update's own (`iterations`).
 */
export function rlUpdate(ctx: RlContext, trainer: Trainer, r: Rollout, lr: number): Promise<{ metrics: Record<string, number>; iterations: Record<string, number>[] }> {
  return smallWork(async () => {
    const u = await PolicyGradients.start(ctx, r);
    const iterations: Record<string, number>[] = [];
    const clock = new Clock();
    let optimizerS = 0;
    try {
      for (let it = 0; u.active && it < ctx.rl.num_iterations; it++) {
        const g = await u.next();
        clock.lap();
        const gradNorm = trainer.applyStep(g.grads, { 'train/loss_rl': g.loss }, lr);
        optimizerS += clock.lap();
        iterations.push({ 'train/loss_rl': g.loss, ...g.metrics, 'train/grad_norm': gradNorm });
      }
    } finally {
      u.dispose();
    }
    return { metrics: u.active ? { ...meanOf(iterations), ...u.times, 'perf/optimizer_s': optimizerS } : {}, iterations };
  });
}

/** Each key's mean over a list of metric records (the keys of the first). */
export function meanOf(records: Record<string, number>[]): Record<string, number> {
  return Object.fromEntries(Object.keys(records[0] ?? {}).map((k) => [k, mean(records.map((m) => m[k]))]));
}

/** The tokens of a rollout's sequences (prompt and completion, each completion with its prompt). */
export function rolloutSequenceTokens(r: Rollout): number {
  return r.completions.reduce((a, c, i) => a + r.unique[Math.floor(i / r.group)].length + c.tokens.length, 0);
}

/**
 * What this rank's GRPO loss is a mean over, so the ranks' and micro-batches' gradients add up to the
 * whole batch's: its completions or its selected tokens, as the loss type says.
 */
function lossWeight(type: GrpoLossType, sel: RlTokens): number {
  return LOSS_TYPES[type] === 'tokens' ? sel.M : sel.N;
}

/** Zero gradients for every parameter: a rank with nothing to train on this step. */
function zeroGrads(model: Transformer): Grads {
  return Object.fromEntries([...model.params].map(([name, p]) => [name, tf.zerosLike(p)]));
}

/** The selected completion tokens of one generation batch, as tensors, and their log-probabilities under a model. */
class PolicyBatch {
  readonly t: ReturnType<typeof rlTokenTensors>;
  private readonly rows: tf.Tensor1D;

  constructor(
    private readonly input: ReturnType<typeof buildContinuation>,
    private readonly group: number,
    private readonly sel: RlTokens,
    private readonly temperature: number,
  ) {
    this.rows = tf.tensor1d(sel.rows, 'int32');
    this.t = rlTokenTensors(sel);
  }

  /** Per-token log-probabilities [N, L] (padding slots read a constant 0) and the restricted distributions' entropies [M]. */
  logp(m: Transformer): { logp: tf.Tensor2D; entropy: tf.Tensor1D } {
    const rows = m.forwardShared(this.input.prompt, this.input.completion, this.group);
    return rlTokenLogp(m.logits(gatherRows(rows, this.rows) as tf.Tensor2D), this.t, this.sel, this.temperature);
  }

  dispose(): void {
    tf.dispose([this.rows, ...Object.values(this.t)]);
  }
}

/** The RL-mode pieces every grouped runner shares: examples, the context, samples for samples.jsonl. */
export function rlSetup(cfg: TrainConfig, p: Prepared, format: CompletionFormat) {
  const { model, tokenizer, prompts, data } = p;
  const train: RlExample[] = data.train.map((e, index) => ({ index, prompt: prompts.prompt(e.text), gold: e.label, goldTokens: tokenizer.encode(data.labels[e.label]), row: exampleRow(e) }));
  const [thinkOpen, thinkClose] = [tokenizer.id('<think>'), tokenizer.id('</think>')];
  const ctx: RlContext = {
    model,
    ref: cfg.rl.beta > 0 ? p.reference() : undefined,
    spec: structureSpec(tokenizer, format, data.labels, cfg.rl.think_max_tokens),
    format,
    guessInRl: format === 'gta' && cfg.gta.guess_loss === 'rl',
    rl: cfg.rl,
    padId: tokenizer.padId,
    rng: STREAMS.sampling(cfg.seed),
    accumSteps: cfg.train.grad_accum_steps,
    rewards: p.rewards,
    describe: (tokens) => {
      const open = tokens.indexOf(thinkOpen);
      const close = tokens.indexOf(thinkClose, open + 1);
      return { think: open >= 0 ? tokenizer.decode(tokens.slice(open + 1, close > open ? close : undefined)) : '', completion: tokenizer.decode(tokens) };
    },
  };
  const G = cfg.rl.group_size;
  /** The first few completions of a step, with their prompt's text, gold label and reward. */
  const samples = (indices: number[], r: Rollout) =>
    r.completions.slice(0, 4).map((c, k) => ({
      text: data.train[indices[Math.floor(k / G)]].text,
      gold: data.labels[train[indices[Math.floor(k / G)]].gold],
      completion: tokenizer.decode(c.tokens),
      reward: r.scored.total[k],
    }));
  return {
    train,
    ctx,
    samples,
    lengths: train.map((e) => e.prompt.length),
    batchSize: cfg.train.batch_size / G,
    rngState: () => ctx.rng.state(),
    restoreRng: (s: RngState) => void (ctx.rng = new Rng(s)),
  };
}

/** GRPO on `<think>...</think><answer>LABEL</answer>`. */
export function rlRunner(cfg: TrainConfig, p: Prepared, trainer: Trainer): Runner {
  const s = rlSetup(cfg, p, 'rl');
  return {
    lengths: s.lengths,
    batchSize: s.batchSize,
    headline: ['reward/total/mean'],
    async step(indices, lr): Promise<StepOutput> {
      const r = rollout(s.ctx, indices.map((i) => s.train[i]));
      const u = await rlUpdate(s.ctx, trainer, r, lr);
      return { metrics: { ...r.metrics, ...u.metrics, 'perf/rollout_tokens': r.rolloutTokens }, tokens: rolloutSequenceTokens(r), samples: s.samples(indices, r), pool: r.pool };
    },
    state: (): RlState => ({ sampling_rng: s.rngState() }),
    restore: (st) => s.restoreRng(parseState(RlStateSchema, st).sampling_rng),
  };
}
