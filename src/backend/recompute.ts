/**
 * Activation checkpointing (transformers' gradient_checkpointing, torch.utils.checkpoint): a piece of
 * the forward pass that keeps only its inputs for the backward, and runs again inside the backward to
 * get its gradients. A transformer block so checkpointed holds its input (one [tokens, d] tensor)
 * through the backward instead of a dozen activations, for one more forward per block.
 *
 * tfjs records nothing on the tape while a custom gradient's forward runs (engine.isTapeOn is false
 * inside a kernel), so the piece runs untaped through tf.customGrad, and its gradient function runs it
 * again under lean_grads.ts's grads (the backward that frees as it goes; tf.variableGrads's own
 * cleanup would read the tape the inner pass has cleared, so only lean_grads's variableGrads trains
 * a checkpointed model). Whatever the piece draws at random must be drawn again the same: callers
 * replay their dropout seeds (src/model/transformer.ts).
 */
import tf from '../util/tfjs.cjs';
import { grads } from './lean_grads.js';

/**
 * f(xs, consts) -> outputs, its values computed now and its gradients with respect to xs and `params`
 * by running f again in the backward. `consts` are tensors f reads without a gradient (masks, rotary
 * tables): kept for the backward. f must read the parameters it uses as the very tensors in `params`
 * (the model's variables) and its other inputs only through its arguments.
 */
export function recompute(f: (xs: tf.Tensor[], consts: tf.Tensor[]) => tf.Tensor[], xs: tf.Tensor[], consts: tf.Tensor[], params: tf.Tensor[]): tf.Tensor[] {
  let shapes: number[][] = [];
  // customGrad returns one tensor: the outputs flattened and laid end to end, unpacked below
  const pack = (ys: tf.Tensor[]) => {
    shapes = ys.map((y) => y.shape);
    return ys.length === 1 ? tf.reshape(ys[0], [-1]) : tf.concat(ys.map((y) => tf.reshape(y, [-1])));
  };
  const n = xs.length;
  const piece = tf.customGrad((...args: unknown[]) => {
    const save = args.pop() as (ts: tf.Tensor[]) => void;
    save([...xs, ...consts]);
    const value = pack(f(xs, consts));
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const again = (...inputs: tf.Tensor[]) => pack(f(inputs.slice(0, n), saved.slice(n)));
      const r = grads(again, [...saved.slice(0, n), ...params], dy);
      r.value.dispose();
      return r.grads;
    };
    return { value, gradFunc };
  });
  const packed = piece(...xs, ...params);
  if (shapes.length === 1) return [tf.reshape(packed, shapes[0])];
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  return tf.split(packed, sizes).map((y, i) => tf.reshape(y, shapes[i]));
}
