/** Losses as small pure functions of tensors, so each can be checked on fixed numbers. */
import * as tf from '@tensorflow/tfjs';

/**
 * Mean cross-entropy of `targets` under `logits` ([N, V] rows, one per target token). Rows that are not
 * targets are never passed in, which is how prompt tokens get exactly zero loss and zero gradient.
 */
export function tokenCrossEntropy(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits, -1);
    const onehot = tf.oneHot(tf.tensor1d(targets, 'int32'), logits.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(logp, onehot), -1))) as tf.Scalar;
  });
}
