/**
 * The fused training pass on the torch backend (native/train_pass.cc): Transformer.forward or
 * forwardShared of gta's own architecture in one addon call, and its whole gradient in one more,
 * instead of several hundred tfjs kernels and tape entries each way. A tfjs op with a custom gradient:
 * the forward keeps what the backward needs in the addon, behind one handle tensor that tfjs saves
 * (and frees, with the pass, once the tape is done or when nothing records gradients).
 * Transformer.nativePass (src/model/transformer.ts) says when the model uses it.
 */
import tf from '../../util/tfjs.cjs';
import { FUSED } from '../fused.js';
import { TorchBackend } from './backend.js';

/** One stream of rows: [n, T] int32 ids and positions, [n, 1, T, Tk] additive attention bias. */
export interface PassInput {
  ids: tf.Tensor;
  positions: tf.Tensor;
  bias: tf.Tensor;
}

export interface TrainPassSpec {
  /** In native_weights.ts's order. */
  weights: tf.Variable[];
  heads: number;
  scale: number;
  eps: number;
  prompt: PassInput;
  /** Completions after prompts shared by groups of `group` consecutive rows (forwardShared's). */
  completion?: PassInput;
  group: number;
  /**
   * Dropout multipliers (dropoutMask's), whole sequences only: the embeddings' [n, T, d], then per
   * block the attention probabilities' [n, H, T, T], the attention output's and the MLP output's [n, T, d].
   */
  dropout?: tf.Tensor[];
}

/** Passes run in this process (tests check the fused path really ran). */
export const passStats = { forward: 0, backward: 0 };

/** Whether the active backend runs the fused pass (the torch backend, with an addon built with it). */
export function trainPassAvailable(): boolean {
  if (tf.getBackend() !== 'torch') return false;
  const b = tf.backend();
  return b instanceof TorchBackend && b.native.trainForward !== undefined && b.native.trainBackward !== undefined;
}

function tapeOn(): boolean {
  return (tf.engine() as unknown as { isTapeOn(): boolean }).isTapeOn();
}

function inputsOf(spec: TrainPassSpec): tf.NamedTensorMap {
  const { prompt, completion } = spec;
  const inputs: tf.NamedTensorMap = { pids: prompt.ids, ppositions: prompt.positions, pbias: prompt.bias };
  if (completion) Object.assign(inputs, { cids: completion.ids, cpositions: completion.positions, cbias: completion.bias });
  spec.dropout?.forEach((m, i) => (inputs[`d${i}`] = m));
  return inputs;
}

function attrsOf(spec: TrainPassSpec, save: boolean, cache: boolean): tf.NamedAttrMap {
  return { weights: spec.weights.length, heads: spec.heads, scale: spec.scale, eps: spec.eps, group: spec.group, shared: spec.completion !== undefined, save, cache, dropout: spec.dropout?.length ?? 0 } as unknown as tf.NamedAttrMap;
}

/**
 * The hidden states after the final layer norm: [n, T, d] for one stream (Transformer.forward), or
 * forwardShared's rows [P + B * Tc, d] with completions; differentiable with respect to the weights.
 */
export function trainPass(spec: TrainPassSpec): tf.Tensor {
  const inputs = inputsOf(spec);
  // the addon keeps activations only when a gradient will be asked for
  const attrs = attrsOf(spec, tapeOn(), false);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const keep = args.pop() as tf.GradSaveFunc;
    (args as tf.Tensor[]).forEach((w, i) => (inputs[`w${i}`] = w));
    const [hidden, handle] = tf.engine().runKernel(FUSED.trainForward, inputs, attrs) as tf.Tensor[];
    passStats.forward++;
    if (handle) keep([handle]);
    return {
      value: hidden,
      gradFunc: (dy: tf.Tensor, [h]: tf.Tensor[]) => {
        passStats.backward++;
        return tf.engine().runKernel(FUSED.trainBackward, { dy, handle: h }) as tf.Tensor[];
      },
    };
  });
  return f(...spec.weights);
}

/**
 * A prefill: the hidden states [n, T, d] and every block's keys and values ([n, H, T, dh] each) of
 * one stream, with no gradient; null while a gradient is being recorded (the tfjs path then runs).
 */
export function prefillPass(spec: TrainPassSpec): { hidden: tf.Tensor; k: tf.Tensor[]; v: tf.Tensor[] } | null {
  if (tapeOn() || spec.completion) return null;
  const inputs = inputsOf(spec);
  spec.weights.forEach((w, i) => (inputs[`w${i}`] = w));
  const [hidden, ...kv] = tf.engine().runKernel(FUSED.trainForward, inputs, attrsOf(spec, false, true)) as tf.Tensor[];
  passStats.forward++;
  const L = kv.length / 2;
  return { hidden, k: kv.slice(0, L), v: kv.slice(L) };
}
