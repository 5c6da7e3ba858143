/**
 * Embedding lookup with a gradient that works on every backend.
 *
 * tfjs's gradient of tf.gather scatters dy back with the UnsortedSegmentSum kernel, which the wasm
 * backend does not have (backprop fails with "Kernel 'UnsortedSegmentSum' not registered for backend
 * 'wasm'"). There we scatter-add on the JS side instead: wasm tensors live in CPU memory, so reading
 * dy and writing the [vocab, dim] gradient are plain memory copies.
 */
import tf from '../util/tfjs.cjs';

/** Rows of `table` ([vocab, dim]) picked by int32 `ids` (any shape): result is [...ids.shape, dim]. */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor): tf.Tensor {
  if (tf.getKernel('UnsortedSegmentSum', tf.getBackend())) return tf.gather(table, ids);
  const [vocab, dim] = table.shape;
  // Read the ids now rather than in the gradient: the gradient runs after the forward pass's tidy
  // scope has ended, by which time an ids tensor created inside that scope is disposed. Closing over
  // the ids (instead of passing them as a customGrad input) also means no gradient is owed for them.
  const idx = ids.dataSync();
  const lookup = tf.customGrad((t) => {
    const value = tf.gather(t as tf.Tensor2D, ids);
    const gradFunc = (dy: tf.Tensor): tf.Tensor => {
      const g = dy.dataSync();
      const out = new Float32Array(vocab * dim);
      for (let i = 0; i < idx.length; i++) {
        const dst = idx[i] * dim;
        const src = i * dim;
        for (let j = 0; j < dim; j++) out[dst + j] += g[src + j];
      }
      return tf.tensor2d(out, [vocab, dim]);
    };
    return { value, gradFunc };
  });
  return lookup(table);
}
