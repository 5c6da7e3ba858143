/**
 * The fused decoding step on the torch backend (native/decode_step.cc): one addon call per new token
 * runs a whole Transformer.step of gta's own architecture for every row, and the output head for the
 * rows that need logits, instead of a few hundred tfjs kernels. Each row's own keys and values stay in
 * the addon, in tensors preallocated for `capacity` tokens; the weights and the prompt's keys and
 * values are the tfjs tensors' own ATen tensors (the addon holds references, so they live as long as
 * the session even if tfjs frees its ids). src/sample/native_step.ts says when decoding uses it.
 */
import tf from '../../util/tfjs.cjs';
import { TorchBackend } from './backend.js';
import type { DecodeStepSpec, TorchNative } from './native.js';

/** DecodeStepSpec with the tensors as tfjs tensors (open() turns them into addon ids). */
export type DecodeStepInput = Omit<DecodeStepSpec, 'weights' | 'promptK' | 'promptV'> & {
  /** In the order src/model/native_weights.ts lists them. */
  weights: tf.Tensor[];
  /** Each layer's prompt keys and values, [B / group, H, Tp, dh] (a prefill's cache). */
  promptK: tf.Tensor[];
  promptV: tf.Tensor[];
};

type Fused = Required<Pick<TorchNative, 'decodeBegin' | 'decodeStep' | 'decodeEnd'>>;

export class NativeDecodeStep {
  /** Steps run by every session of this process (tests check the fused path really ran). */
  static stepsRun = 0;
  private session: number | undefined;
  /** The logits of the last step: [rows, vocab] at most, overwritten by the next. */
  private readonly out: Float32Array;

  private constructor(
    private readonly native: Fused,
    session: number,
    rows: number,
    private readonly vocab: number,
  ) {
    this.session = session;
    this.out = new Float32Array(rows * vocab);
  }

  /**
   * A session on the active torch backend, or null where there is none: another backend, an addon
   * built before the fused step, or a tensor whose data is not on the torch backend yet.
   */
  static open(input: DecodeStepInput): NativeDecodeStep | null {
    if (tf.getBackend() !== 'torch') return null;
    const backend = tf.backend();
    if (!(backend instanceof TorchBackend)) return null;
    const { decodeBegin, decodeStep, decodeEnd } = backend.native;
    if (!decodeBegin || !decodeStep || !decodeEnd) return null;
    const tensors = [...input.weights, ...input.promptK, ...input.promptV];
    if (!tensors.every((t) => !t.isDisposed && backend.holds(t.dataId))) return null;
    const ids = (ts: tf.Tensor[]) => ts.map((t) => backend.idOf(t.dataId));
    const { weights, promptK, promptV, ...rest } = input;
    const session = decodeBegin({ ...rest, weights: ids(weights), promptK: ids(promptK), promptV: ids(promptV) });
    return new NativeDecodeStep({ decodeBegin, decodeStep, decodeEnd }, session, input.pad.length, weights[0].shape[0]);
  }

  /**
   * One new token per row (ids and positions [rows]); returns the logits of rows `need`, in that
   * order, as [need.length, vocab] values: a view that the next step overwrites.
   */
  step(ids: Int32Array, positions: Int32Array, need: Int32Array): Float32Array {
    if (this.session === undefined) throw new Error('NativeDecodeStep: the session is closed');
    this.native.decodeStep(this.session, ids, positions, need, this.out);
    NativeDecodeStep.stepsRun++;
    return this.out.subarray(0, need.length * this.vocab);
  }

  /** Frees the session's own cache and its references to the weights and the prompt cache. */
  close(): void {
    if (this.session === undefined) return;
    this.native.decodeEnd(this.session);
    this.session = undefined;
  }
}
