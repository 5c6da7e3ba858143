/** Losses as small pure functions of tensors, so each can be checked on fixed numbers. */
import * as tf from '@tensorflow/tfjs';
import { pickLogProbs, rowEntropy } from '../backend/fused.js';

/**
 * Mean cross-entropy of `targets` under `logits` ([N, V] rows, one per target token). Rows that are not
 * targets are never passed in, which is how prompt tokens get exactly zero loss and zero gradient.
 */
export function tokenCrossEntropy(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(pickLogProbs(logits, tf.tensor1d(targets, 'int32')))) as tf.Scalar);
}

/**
 * Mean entropy of the rows of `logits` (a metric). A restricted decoding's disallowed tokens sit at
 * NEG_INF (-1e9, finite), where p = exp(log p) is exactly 0 and so is their p log p.
 */
export function meanEntropy(logits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.mean(rowEntropy(logits)));
}
