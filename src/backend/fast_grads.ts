/**
 * Gradients that replace tfjs's own (installed once per process by installFastGradients): BatchMatMul
 * through matMulFast (matmul.ts says why), with the reduction over broadcast batch dims that tfjs's
 * lacks; and Relu and Softmax as one fused kernel where the backend has one.
 */
import tf from '../util/tfjs.cjs';
import { FUSED, hasFused } from './fused.js';
import { matMulFast } from './matmul.js';

/**
 * Sums a gradient computed at the broadcast batch shape back down to an input's own shape. tfjs's
 * matMul broadcasts batch dims ([B,T,d] @ [d,e], [B,H,m,k] @ [1,H,k,n]) but its stock gradient does
 * not reduce them, so backprop through such a product fails with a shape error; this fixes that.
 */
function reduceToShape(g: tf.Tensor, shape: number[]): tf.Tensor {
  if (tf.util.arraysEqual(g.shape, shape)) return g;
  const axes = tf.broadcast_util.getReductionAxes(shape, g.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

/**
 * The gradient of BatchMatMul: the same four transpose cases as tfjs-core's BatchMatMul_grad.js, with
 * every product going through matMulFast (so on wasm the unbatched ones run on XNNPACK), plus the
 * reduction over broadcast batch dims.
 */
const batchMatMulGrad: tf.GradConfig = {
  kernelName: tf.BatchMatMul,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const g = dy as tf.Tensor;
    const [a, b] = saved;
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    let da: () => tf.Tensor;
    let db: () => tf.Tensor;
    if (!transposeA && !transposeB) {
      // y = a b: da = dy b^T, db = a^T dy
      da = () => matMulFast(g, b, false, true);
      db = () => matMulFast(a, g, true, false);
    } else if (!transposeA && transposeB) {
      // y = a b^T: da = dy b, db = dy^T a
      da = () => matMulFast(g, b, false, false);
      db = () => matMulFast(g, a, true, false);
    } else if (transposeA && !transposeB) {
      // y = a^T b: da = b dy^T, db = a dy
      da = () => matMulFast(b, g, false, true);
      db = () => matMulFast(a, g, false, false);
    } else {
      // y = a^T b^T: da = b^T dy^T, db = dy^T a^T
      da = () => matMulFast(b, g, true, true);
      db = () => matMulFast(g, a, true, true);
    }
    return { a: () => reduceToShape(da(), a.shape), b: () => reduceToShape(db(), b.shape) };
  },
};

/** Relu's gradient dy * step(x): one kernel where the backend has it (tfjs's takes three passes). */
const reluGrad: tf.GradConfig = {
  kernelName: tf.Relu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    const g = dy as tf.Tensor;
    if (hasFused(FUSED.reluGrad)) return { x: () => tf.engine().runKernel(FUSED.reluGrad, { dy: g, x }) as tf.Tensor };
    return { x: () => tf.mul(g, tf.cast(tf.step(x), 'float32')) };
  },
};

/** Softmax's gradient y * (dy - sum(dy * y)): one kernel where the backend has it. */
const softmaxGrad: tf.GradConfig = {
  kernelName: tf.Softmax,
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [y] = saved;
    const g = dy as tf.Tensor;
    const { dim } = attrs as unknown as { dim: number };
    if (hasFused(FUSED.softmaxGrad)) return { logits: () => tf.engine().runKernel(FUSED.softmaxGrad, { dy: g, y }, { dim }) as tf.Tensor };
    const dyTimesY = tf.mul(g, y);
    return { logits: () => tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [dim], true), y)) };
  },
};

let installed = false;

/**
 * Replaces tfjs's BatchMatMul, Relu and Softmax gradients with the ones above (idempotent). The
 * gradient registry is global to the process, so this covers every backend; tfjs only warns about
 * overriding a gradient when its DEBUG flag is on, so this is silent in normal runs.
 */
export function installFastGradients(): void {
  if (installed) return;
  for (const g of [batchMatMulGrad, reluGrad, softmaxGrad]) tf.registerGradient(g);
  installed = true;
}
