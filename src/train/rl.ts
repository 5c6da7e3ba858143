/**
 * One step of RL (GRPO) or GTA: sample G completions per prompt, score them, normalise advantages in
 * each group, then update the policy with the clipped surrogate on the completion tokens. GTA adds
 * cross-entropy on the gold label of a teacher-forced `prompt <guess>GOLD</guess>` and combines the two
 * gradients under the configured constraint; its RL loss masks the guess span out.
 *
 * Tokens whose set of choices had one member (tags forced by structured decoding) carry no decision and
 * are left out of the RL loss; the rest get log-probabilities under the same restricted distribution
 * they were sampled from, at the sampling temperature.
 */
import * as tf from '@tensorflow/tfjs';
import { pickLogProbs } from '../backend/fused.js';
import { gatherRows } from '../backend/gather_rows.js';
import type { RlConfig, GtaConfig } from '../config/schema.js';
import { NEG_INF, type Transformer } from '../model/transformer.js';
import { stopGradient } from '../util/tf_extra.js';
import type { Rng } from '../util/rng.js';
import { NonFiniteError, type AdamW } from './adamw.js';
import { buildInput, disposeInput, type BatchLayout } from './batch.js';
import { combineGradients } from './grad_constraint.js';
import { groupAdvantages, grpoLoss } from './grpo.js';
import { scoreRewards, REWARD_NAMES } from './rewards.js';
import { candidates, sampleCompletions, type Completion } from './rollout.js';
import { sftGrads, type SftExample } from './sft.js';
import { choiceCount, parseCompletion, type CompletionFormat, type StructureSpec } from './structure.js';

export interface RlExample {
  prompt: number[];
  gold: number;
  /** `<guess> GOLD </guess>` is the guess target for GTA's L_SFT. */
  goldTokens: number[];
}

export interface RlContext {
  model: Transformer;
  /** The frozen initial model, when rl.beta > 0. */
  ref?: Transformer;
  optimizer: AdamW;
  spec: StructureSpec;
  format: CompletionFormat;
  rl: RlConfig;
  gta?: GtaConfig;
  padId: number;
  guessOpen: number;
  rng: Rng;
}

/** A stable summary of a completion batch, kept for samples.jsonl. */
export interface RlStepResult {
  metrics: Record<string, number>;
  tokens: number;
  rolloutTokens: number;
  completions: Completion[];
  rewards: number[];
  conflict: boolean | null;
}

export function rlStep(ctx: RlContext, batch: RlExample[], lr: number): RlStepResult {
  const { model, rl, spec } = ctx;
  const G = rl.group_size;
  const V = model.arch.vocab_size;
  const prompts = batch.flatMap((e) => Array.from({ length: G }, () => e.prompt));
  const gold = batch.flatMap((e) => Array.from({ length: G }, () => e.gold));

  const t0 = performance.now();
  const comps = sampleCompletions(model, prompts, {
    spec,
    decoding: rl.decoding,
    temperature: rl.temperature,
    topP: rl.top_p,
    maxNewTokens: rl.max_completion_tokens,
    greedy: false,
    rng: ctx.rng,
    padId: ctx.padId,
  });
  const rolloutSeconds = (performance.now() - t0) / 1000;
  const rolloutTokens = comps.reduce((a, c) => a + c.tokens.length, 0);

  const parsed = comps.map((c) => parseCompletion(spec, c.tokens));
  const scored = scoreRewards(parsed, gold, rl.rewards);
  const adv = groupAdvantages(scored.total, G, rl.scale_rewards);

  const seqs = prompts.map((p, i) => [...p, ...comps[i].tokens]);
  const { input, layout } = buildInput(seqs, ctx.padId);
  const sel = selectRlTokens(comps, prompts.map((p) => p.length), layout, { format: ctx.format, maskTruncated: rl.mask_truncated_completions, spec, vocab: V });
  const { M, N } = sel;

  const metrics: Record<string, number> = {
    'reward/total/mean': mean(scored.total),
    'reward/total/std': std(scored.total),
    'reward/frac_zero_std': adv.fracZeroStd,
    'completions/mean_length': rolloutTokens / N,
    'completions/clipped_ratio': comps.filter((c) => c.truncated).length / N,
    'perf/rollout_tokens_per_s': rolloutTokens / Math.max(rolloutSeconds, 1e-9),
  };
  for (const name of REWARD_NAMES) {
    metrics[`reward/${name}/mean`] = mean(scored.components[name]);
    metrics[`reward/${name}/std`] = std(scored.components[name]);
  }
  let conflict: boolean | null = null;
  if (M > 0) {
    const rowsT = tf.tensor1d(sel.rows, 'int32');
    const t = rlTokenTensors(sel);
    const advT = tf.tensor1d(adv.advantages);
    // Per-token log-probabilities [N, L] (padding slots read a constant 0).
    const tokenLogp = (m: Transformer) => {
      const [B, T, d] = [layout.B, layout.T, m.arch.d_model];
      const hidden = tf.reshape(m.forward(input).hidden, [B * T, d]) as tf.Tensor2D;
      const logits = m.logits(gatherRows(hidden, rowsT) as tf.Tensor2D);
      return rlTokenLogp(logits, t, sel, rl.temperature);
    };
    const old = rl.num_iterations > 1 ? tf.tidy(() => tokenLogp(model).logp) : undefined;
    const refLogp = ctx.ref && rl.beta > 0 ? tf.tidy(() => tokenLogp(ctx.ref!).logp) : undefined;
    const sftBatch: SftExample[] = ctx.format === 'gta' ? batch.map((e) => ({ prompt: [...e.prompt, ctx.guessOpen], target: e.goldTokens })) : [];
    let lossRl = 0;
    let lossSft = 0;
    let clipRatio = 0;
    let kl = 0;
    let entropy = 0;
    let cos = 0;
    let gradNorm = 0;
    for (let it = 0; it < rl.num_iterations; it++) {
      let side: tf.Tensor[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const { logp, logits } = tokenLogp(model);
        const r = grpoLoss({
          logp,
          oldLogp: old ?? stopGradient(logp),
          refLogp,
          adv: advT,
          mask: t.mask,
          eps: rl.epsilon,
          epsHigh: rl.epsilon_high ?? rl.epsilon,
          beta: rl.beta,
          lossType: rl.loss_type,
          maxCompletionLength: sel.L,
        });
        const all = tf.logSoftmax(logits, -1);
        const ent = tf.mean(tf.neg(tf.sum(tf.mul(tf.exp(all), tf.where(tf.isFinite(all), all, tf.zerosLike(all))), -1)));
        side = [tf.keep(r.clipRatio), tf.keep(r.kl), tf.keep(ent)];
        return r.loss;
      });
      lossRl = value.dataSync()[0];
      [clipRatio, kl, entropy] = side.map((t) => t.dataSync()[0]);
      tf.dispose([value, ...side]);
      let gRl = model.byParamName(grads);
      let step = gRl;
      if (ctx.format === 'gta' && ctx.gta) {
        const s = sftGrads(model, sftBatch, ctx.padId, {});
        lossSft = s.loss;
        const c = combineGradients(s.grads, gRl, { lambdaSft: ctx.gta.lambda_sft, lambdaRl: ctx.gta.lambda_rl, rule: ctx.gta.gradient_constraint });
        cos = c.cosine;
        conflict = c.conflict;
        tf.dispose([...Object.values(s.grads), ...Object.values(gRl)]);
        gRl = {};
        step = c.grads;
      }
      try {
        if (!Number.isFinite(lossRl)) throw new NonFiniteError('loss train/loss_rl');
        if (!Number.isFinite(lossSft)) throw new NonFiniteError('loss train/loss_sft');
        gradNorm = ctx.optimizer.apply(step, lr);
      } finally {
        tf.dispose(Object.values(step));
      }
    }
    tf.dispose([rowsT, ...Object.values(t), advT, ...(old ? [old] : []), ...(refLogp ? [refLogp] : [])]);
    Object.assign(metrics, { 'train/loss_rl': lossRl, clip_ratio: clipRatio, kl, entropy, 'train/grad_norm': gradNorm });
    if (ctx.format === 'gta') Object.assign(metrics, { 'train/loss_sft': lossSft, 'grad/cos_sft_rl': cos, 'grad/conflict': conflict ? 1 : 0 });
  }
  disposeInput(input);
  return { metrics, tokens: seqs.reduce((a, s) => a + s.length, 0), rolloutTokens, completions: comps, rewards: scored.total, conflict };
}

function concat(rows: Float32Array[], V: number): Float32Array {
  const out = new Float32Array(rows.length * V);
  rows.forEach((r, i) => out.set(r, i * V));
  return out;
}

function mean(x: number[]): number {
  return x.length ? x.reduce((a, b) => a + b, 0) / x.length : 0;
}

function std(x: number[]): number {
  const m = mean(x);
  return Math.sqrt(mean(x.map((v) => (v - m) ** 2)));
}

/** The completion tokens that enter the RL loss, and where they sit in the batch. */
export interface RlTokens {
  /** Row of the flattened [B*T] hidden states that predicts each selected token. */
  rows: Int32Array;
  targets: Int32Array;
  /** Per selected token: 0 where the decoding allowed a token, NEG_INF elsewhere (structured decoding's restriction). */
  bias: Float32Array[];
  /** [N, L] position of each completion's selected tokens among the M selected ones (M = padding). */
  index: Int32Array;
  /** [N, L] 1 for a real token, 0 for padding. */
  mask: Float32Array;
  M: number;
  N: number;
  L: number;
}

/**
 * Picks the completion tokens the RL loss sees: not GTA's guess span (trained by L_SFT instead), not
 * forced tokens (only one choice: no decision, no gradient), and no tokens of truncated completions
 * when they are masked.
 */
export function selectRlTokens(comps: Completion[], promptLengths: number[], layout: BatchLayout, o: { format: CompletionFormat; maskTruncated: boolean; spec: StructureSpec; vocab: number }): RlTokens {
  const specials = new Set(o.spec.specials);
  const rows: number[] = [];
  const targets: number[] = [];
  const bias: Float32Array[] = [];
  const perComp: number[][] = comps.map(() => []);
  comps.forEach((c, i) => {
    if (o.maskTruncated && c.truncated) return;
    c.tokens.forEach((tok, j) => {
      if (o.format === 'gta' && c.spans[j] === 'guess') return;
      const a = c.allowed[j];
      if (choiceCount(a, o.vocab, specials.size) <= 1) return;
      perComp[i].push(rows.length);
      rows.push(i * layout.T + layout.pad[i] + promptLengths[i] + j - 1);
      targets.push(tok);
      if (a.kind !== 'all') {
        const b = new Float32Array(o.vocab).fill(NEG_INF);
        for (const id of candidates(a, specials, o.vocab)) b[id] = 0;
        bias.push(b);
      } else bias.push(new Float32Array(o.vocab));
    });
  });
  const M = rows.length;
  const N = comps.length;
  const L = Math.max(1, ...perComp.map((r) => r.length));
  const index = new Int32Array(N * L).fill(M);
  const mask = new Float32Array(N * L);
  perComp.forEach((r, i) => r.forEach((m, j) => ((index[i * L + j] = m), (mask[i * L + j] = 1))));
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets), bias, index, mask, M, N, L };
}

/** The tensors rlTokenLogp needs, made once per batch (the caller disposes them). */
export function rlTokenTensors(sel: RlTokens): { bias: tf.Tensor2D; targets: tf.Tensor1D; index: tf.Tensor2D; mask: tf.Tensor2D } {
  const V = sel.bias[0]?.length ?? 1;
  return {
    bias: tf.tensor2d(concat(sel.bias, V), [sel.M, V]),
    targets: tf.tensor1d(sel.targets, 'int32'),
    index: tf.tensor2d(sel.index, [sel.N, sel.L], 'int32'),
    mask: tf.tensor2d(sel.mask, [sel.N, sel.L]),
  };
}

/**
 * Log-probabilities [N, L] of the selected tokens under `logits` ([M, V], one row per selected token)
 * at `temperature`, restricted as the decoding was; padding slots read 0. Also the restricted logits
 * (for the entropy metric).
 */
export function rlTokenLogp(logits: tf.Tensor2D, t: ReturnType<typeof rlTokenTensors>, sel: RlTokens, temperature: number): { logp: tf.Tensor2D; logits: tf.Tensor2D } {
  const restricted = tf.add(tf.div(logits, temperature), t.bias) as tf.Tensor2D;
  const picked = pickLogProbs(restricted, t.targets);
  const padded = tf.reshape(gatherRows(tf.reshape(tf.concat([picked, tf.zeros([1])]), [sel.M + 1, 1]) as tf.Tensor2D, t.index), [sel.N, sel.L]) as tf.Tensor2D;
  return { logp: padded, logits: restricted };
}
