/**
 * Faster matrix products on the wasm backend.
 *
 * tfjs-backend-wasm 4.22 sends a BatchMatMul to XNNPACK only when neither transpose flag is set and
 * both operands have batch size 1; everything else goes to a generic blocked loop in C++. For a 2-D
 * product that loop is 5-15x slower than XNNPACK, so a transposed 2-D product is much faster as an
 * explicit `tf.transpose` followed by a plain product (measured: [2048,128]^T @ [2048,512] takes
 * 258 ms with the flag, 16 ms with the explicit transpose). tfjs's own gradient of matMul sets those
 * flags for both backward products, so we replace it. Batched products (attention) use the generic
 * loop whatever the flags, so there the flags stay and no transpose is added.
 */
import tf from '../util/tfjs.cjs';

/** Backends whose unbatched matMul is much slower with transpose flags than without. */
const SLOW_TRANSPOSE_FLAGS = new Set(['wasm']);

/** Swaps the last two axes ([..., m, n] -> [..., n, m]). */
function swapLastTwo(x: tf.Tensor): tf.Tensor {
  const r = x.rank;
  const perm = [...Array(r).keys()];
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(x, perm);
}

/** Product of the batch dims (all but the last two). */
function batchSize(x: tf.Tensor): number {
  return tf.util.sizeFromShape(x.shape.slice(0, -2));
}

/**
 * `tf.matMul(a, b, transposeA, transposeB)`, but on wasm an unbatched product with a transpose flag is
 * done as explicit transposes plus a plain product, which runs on XNNPACK (use for forward passes
 * like the tied output head `h @ emb^T`; batched ones like `q @ k^T` are left as they are).
 */
export function matMulFast(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if ((transposeA || transposeB) && SLOW_TRANSPOSE_FLAGS.has(tf.getBackend()) && batchSize(a) === 1 && batchSize(b) === 1) {
    return tf.matMul(transposeA ? swapLastTwo(a) : a, transposeB ? swapLastTwo(b) : b);
  }
  return tf.matMul(a, b, transposeA, transposeB);
}
