/**
 * Combining the SFT and RL gradients of GTA's hybrid loss (arXiv 2509.12108).
 *
 * Gradients are Record<string, tf.Tensor> (parameter name -> gradient). A key present in only one of
 * the two counts as zeros in the other. Cosines and dot products are over ALL parameters together
 * (flattened and concatenated), not per parameter: the rules below act on the update as a whole.
 */
import tf from '../util/tfjs.cjs';
import { linearCombination } from '../backend/fused.js';
import { gradDots } from '../backend/grad_dots.js';
import { combineInPlace } from '../backend/torch/in_place.js';

export type Grads = Record<string, tf.Tensor>;
export type ConflictRule = 'drop_sft_on_conflict' | 'pcgrad' | 'none';

export interface CombineOptions {
  lambdaSft: number;
  lambdaRl: number;
  /**
   * 'none': lambdaSft*gSft + lambdaRl*gRl.
   * 'drop_sft_on_conflict': GTA's rule as reported: when cos(gSft, gRl) < 0 the step is lambdaRl*gRl
   *   alone, so the SFT term never pulls against the reward.
   * 'pcgrad' (Yu et al. 2020): when gSft·gRl < 0 each is projected onto the normal plane of the other
   *   (original) gradient, removing the conflicting component, then weighted and summed.
   */
  rule: ConflictRule;
}

/** Both gradients over the union of keys, a missing side filled with zeros of the other's shape. */
function aligned(a: Grads, b: Grads): { keys: string[]; ga: (k: string) => tf.Tensor; gb: (k: string) => tf.Tensor } {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  for (const k of keys) {
    if (a[k] && b[k] && !tf.util.arraysEqual(a[k].shape, b[k].shape)) {
      throw new Error(`gradient '${k}' has shape [${a[k].shape}] in one set and [${b[k].shape}] in the other`);
    }
  }
  return {
    keys,
    ga: (k) => a[k] ?? tf.zerosLike(b[k]),
    gb: (k) => b[k] ?? tf.zerosLike(a[k]),
  };
}

/** [a·b, |a|², |b|²] over all parameters, read back in one go (one GPU sync, not three). */
function dots(a: Grads, b: Grads): { ab: number; aa: number; bb: number } {
  const { keys, ga, gb } = aligned(a, b);
  let d = { ab: 0, aa: 0, bb: 0 };
  // zero fillers for a key only one side has are made here and freed here
  tf.tidy(() => void (d = gradDots(keys.map(ga), keys.map(gb))));
  return d;
}

function cosineOf(ab: number, aa: number, bb: number): number {
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** Cosine between two gradient sets over all parameters together; 0 if either is all zeros. */
export function gradCosine(a: Grads, b: Grads): number {
  const { ab, aa, bb } = dots(a, b);
  return cosineOf(ab, aa, bb);
}

/**
 * The gradient to step with, from the SFT and RL gradients. Every rule's result is a linear combination
 * cSft*gSft + cRl*gRl with scalar coefficients, so each is computed as that (one pass over the
 * parameters), written into gSft's own tensors where the backend can (src/backend/torch/in_place.ts:
 * no third set of gradients, 4 bytes a parameter), else new ones. The caller disposes both inputs and
 * the result (disposeUnused frees what of gSft the result does not hold).
 */
export function combineGradients(
  gSft: Grads,
  gRl: Grads,
  opts: CombineOptions,
): { grads: Grads; cosine: number; conflict: boolean } {
  const { lambdaSft, lambdaRl, rule } = opts;
  const { ab, aa, bb } = dots(gSft, gRl);
  const cosine = cosineOf(ab, aa, bb);
  const conflict = cosine < 0;

  let cSft = lambdaSft;
  let cRl = lambdaRl;
  if (rule === 'drop_sft_on_conflict' && conflict) {
    cSft = 0;
  } else if (rule === 'pcgrad' && ab < 0) {
    // ab < 0 implies both norms are > 0. With gSft' = gSft - (ab/|gRl|²) gRl and
    // gRl' = gRl - (ab/|gSft|²) gSft, lambdaSft*gSft' + lambdaRl*gRl' expands to:
    cSft = lambdaSft - (lambdaRl * ab) / aa;
    cRl = lambdaRl - (lambdaSft * ab) / bb;
  } else if (rule !== 'none' && rule !== 'drop_sft_on_conflict' && rule !== 'pcgrad') {
    const never: never = rule;
    throw new Error(`unknown gradient rule '${String(never)}'`);
  }

  // in place where it can; tidy keeps the returned record's tensors and disposes the rest (scaled terms, zero fillers)
  const { keys, ga, gb } = aligned(gSft, gRl);
  const inPlace = new Set(keys.filter((k) => gSft[k] && gRl[k] && combineInPlace(gSft[k], gRl[k], cSft, cRl)));
  const grads = tf.tidy(() => {
    const rest = keys.filter((k) => !inPlace.has(k));
    const combined = linearCombination(rest.map(ga), rest.map(gb), cSft, cRl);
    return Object.fromEntries([...[...inPlace].map((k) => [k, gSft[k]]), ...rest.map((k, i) => [k, combined[i]])]);
  });
  return { grads, cosine, conflict };
}

/** Disposes the tensors of `grads` that `result` does not hold (combineGradients's result may be gSft's own tensors). */
export function disposeUnused(grads: Grads, result: Grads): void {
  const kept = new Set(Object.values(result));
  tf.dispose(Object.values(grads).filter((t) => !kept.has(t)));
}
