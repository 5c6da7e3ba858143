/** Losses as small pure functions of tensors, so each can be checked on fixed numbers. */
import tf from '../util/tfjs.cjs';
import { tokenLogProbs } from '../backend/fused.js';

/**
 * Mean cross-entropy of `targets` under `logits` ([N, V] rows, one per target token). Rows that are not
 * targets are never passed in, which is how prompt tokens get exactly zero loss and zero gradient.
 */
export function tokenCrossEntropy(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tokenLogProbs(logits, tf.tensor1d(targets, 'int32')).logp)) as tf.Scalar);
}
