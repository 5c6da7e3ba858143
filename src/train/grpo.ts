/**
 * The math of GRPO (Group Relative Policy Optimization) as small pure functions, following TRL's
 * GRPOTrainer so that numbers and metrics mean the same thing as there.
 *
 * For each prompt G completions are sampled and each gets one scalar reward. Advantages are the rewards
 * normalised within their group; completion tokens are trained with a PPO-style clipped surrogate on
 * per-token log-probs, optionally plus beta * KL to a frozen reference model (the k3 estimator).
 *
 * Tensors are [N, L]: N completions, L completion tokens (padded); `mask` is a float [N, L] with 1 for
 * the tokens that count. Everything on the tf side is differentiable w.r.t. `logp`.
 */
import tf from '../util/tfjs.cjs';
import type { GrpoLossType } from '../config/grpo_losses.js';
import { mean, stdUnbiased } from '../util/stats.js';

export type AdvantageScale = 'group' | 'batch' | 'none';

/** Added to the std before dividing, as in TRL, so a near-constant group does not blow up. */
const STD_EPS = 1e-4;
/** A group std below this counts as zero: the group carries no learning signal (all rewards equal). */
const ZERO_STD = 1e-8;

/**
 * Group-relative advantages. `rewards` are laid out group after group (length nGroups * groupSize).
 * advantage = r - mean(group), then divided by std + 1e-4 where std is
 *   'group': the std of the reward's own group (GRPO as published, TRL's default);
 *   'batch': the std of all rewards in the batch (TRL scale_rewards="batch"; the mean stays the group's);
 *   'none':  no division (Dr. GRPO: scaling by the group std over-weights easy/hard prompts).
 * All stds are unbiased (n-1), as torch.std in TRL.
 *
 * fracZeroStd is the fraction of groups whose own std is ~0 (all rewards equal: zero advantage, no
 * gradient from that prompt). TRL's frac_reward_zero_std uses the batch std in 'batch' mode; we always
 * use the group std because that is what says how many prompts gave no signal.
 */
export function groupAdvantages(
  rewards: number[],
  groupSize: number,
  scale: AdvantageScale,
): { advantages: number[]; fracZeroStd: number; groupStd: number[] } {
  if (!Number.isInteger(groupSize) || groupSize < 1) throw new Error(`groupSize must be a positive integer, got ${groupSize}`);
  if (rewards.length % groupSize !== 0) {
    throw new Error(`${rewards.length} rewards do not split into groups of ${groupSize}`);
  }
  const nGroups = rewards.length / groupSize;
  const batchStd = stdUnbiased(rewards);
  const advantages: number[] = [];
  const groupStd: number[] = [];
  let zero = 0;
  for (let g = 0; g < nGroups; g++) {
    const group = rewards.slice(g * groupSize, (g + 1) * groupSize);
    const m = mean(group);
    const s = stdUnbiased(group);
    groupStd.push(s);
    if (s < ZERO_STD) zero++;
    const denom = scale === 'group' ? s + STD_EPS : scale === 'batch' ? batchStd + STD_EPS : 1;
    for (const r of group) advantages.push((r - m) / denom);
  }
  return { advantages, fracZeroStd: nGroups === 0 ? 0 : zero / nGroups, groupStd };
}

/**
 * PPO clipped surrogate per token: -min(ratio * A, clip(ratio, 1-eps, 1+epsHigh) * A), with
 * ratio = exp(logp - oldLogp) and A (one per completion) broadcast over its tokens. epsHigh > eps is
 * DAPO's "clip higher". `clipped` (not differentiable, a metric) is 1 where the clipped branch is the
 * active one, i.e. where the token gets no gradient: ratio < 1-eps with A < 0, or ratio > 1+epsHigh
 * with A > 0 (TRL's clip_ratio regions).
 */
export function clippedSurrogate(
  logp: tf.Tensor2D,
  oldLogp: tf.Tensor2D,
  adv: tf.Tensor1D,
  eps: number,
  epsHigh: number,
): { perToken: tf.Tensor2D; clipped: tf.Tensor2D } {
  return tf.tidy(() => {
    const a = tf.expandDims(adv, 1); // [N, 1]
    const ratio = tf.exp(tf.sub(logp, oldLogp));
    const unclippedObj = tf.mul(ratio, a);
    const clippedObj = tf.mul(tf.clipByValue(ratio, 1 - eps, 1 + epsHigh), a);
    // tf.minimum sends the gradient to its first argument on ties, so at ratio == 1 (on-policy, the
    // usual case) the gradient is the unclipped one, as in torch.min.
    const perToken = tf.neg(tf.minimum(unclippedObj, clippedObj)) as tf.Tensor2D;
    const low = tf.logicalAnd(tf.less(ratio, 1 - eps), tf.less(a, 0));
    const high = tf.logicalAnd(tf.greater(ratio, 1 + epsHigh), tf.greater(a, 0));
    const clipped = tf.cast(tf.logicalOr(low, high), 'float32') as tf.Tensor2D;
    return { perToken, clipped };
  });
}

/**
 * Per-token KL(policy || reference) with Schulman's k3 estimator: exp(ref - logp) - (ref - logp) - 1.
 * Unbiased for samples from the policy, always >= 0, and 0 exactly where the two agree.
 */
export function k3Kl(logp: tf.Tensor2D, refLogp: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const d = tf.sub(refLogp, logp);
    return tf.sub(tf.sub(tf.exp(d), d), 1) as tf.Tensor2D;
  });
}

/**
 * Reduces per-token losses to one scalar, as TRL's loss_type:
 *   'grpo':    mean over sequences of (masked sum / max(1, sequence length)): each completion weighs the
 *              same, so tokens of long completions weigh less (the length bias Dr. GRPO points out);
 *   'bnpo':    masked sum / max(1, masked tokens in the batch): each token weighs the same;
 *   'dr_grpo': masked sum / (N * maxCompletionLength): a constant normaliser, no length bias;
 *   'dapo':    masked sum / max(1, masked tokens). TRL divides by the number of tokens in the global
 *              batch (all processes, all gradient-accumulation steps); in one process and one step that
 *              is exactly 'bnpo'.
 */
export function aggregateLoss(perToken: tf.Tensor2D, mask: tf.Tensor2D, type: GrpoLossType, maxCompletionLength: number): tf.Scalar {
  return tf.tidy(() => {
    const masked = tf.mul(perToken, mask);
    switch (type) {
      case 'grpo': {
        const perSeq = tf.div(tf.sum(masked, 1), tf.maximum(tf.sum(mask, 1), 1));
        return tf.mean(perSeq) as tf.Scalar;
      }
      case 'bnpo':
      case 'dapo':
        return tf.div(tf.sum(masked), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
      case 'dr_grpo':
        return tf.div(tf.sum(masked), perToken.shape[0] * maxCompletionLength) as tf.Scalar;
      default: {
        const never: never = type;
        throw new Error(`unknown GRPO loss type '${String(never)}'`);
      }
    }
  });
}

/** Masked mean over all tokens, max(1, count) in the denominator (TRL's metric reduction). */
function maskedMean(x: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.div(tf.sum(tf.mul(x, mask)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
}

export interface GrpoLossArgs {
  /** Log-probs of the completion tokens under the policy being trained (the tensor differentiated). */
  logp: tf.Tensor2D;
  /** Log-probs under the policy that sampled them (equal to logp, detached, with one update per batch). */
  oldLogp: tf.Tensor2D;
  /** Log-probs under the frozen reference model; used only if beta > 0. */
  refLogp?: tf.Tensor2D;
  /** One advantage per completion [N]. */
  adv: tf.Tensor1D;
  mask: tf.Tensor2D;
  eps: number;
  epsHigh: number;
  beta: number;
  lossType: GrpoLossType;
  maxCompletionLength: number;
}

/**
 * The GRPO objective: per token, clipped surrogate + beta * k3 KL (the KL only when beta > 0 and a
 * reference is given), reduced by `lossType`. Metrics: `kl` is the masked mean k3 (0 without a
 * reference term), `clipRatio` the masked fraction of tokens where the clip is active.
 */
export function grpoLoss(args: GrpoLossArgs): { loss: tf.Scalar; clipRatio: tf.Scalar; kl: tf.Scalar } {
  const { logp, oldLogp, refLogp, adv, mask, eps, epsHigh, beta, lossType, maxCompletionLength } = args;
  return tf.tidy(() => {
    const { perToken: surrogate, clipped } = clippedSurrogate(logp, oldLogp, adv, eps, epsHigh);
    let perToken: tf.Tensor2D = surrogate;
    let kl: tf.Scalar = tf.scalar(0);
    if (beta > 0 && refLogp !== undefined) {
      const k3 = k3Kl(logp, refLogp);
      perToken = tf.add(surrogate, tf.mul(k3, beta)) as tf.Tensor2D;
      kl = maskedMean(k3, mask);
    }
    const loss = aggregateLoss(perToken, mask, lossType, maxCompletionLength);
    return { loss, clipRatio: maskedMean(clipped, mask), kl };
  });
}
