/** What every kernel file shares: the kernel signature and small helpers over TorchBackend. */
import tf from '../../../util/tfjs.cjs';
import { SCALAR_TYPE, type TorchBackend } from '../backend.js';
import type { Raw } from '../native.js';

export type Info = tf.TensorInfo;
/** A kernel: tfjs's named inputs and attributes in, TensorInfo(s) out. */
export type Kernel = (b: TorchBackend, inputs: Record<string, Info>, attrs: Record<string, unknown>) => Info | Info[];
export type KernelTable = Record<string, Kernel>;

export { SCALAR_TYPE };

/** The at::ScalarType of a tfjs dtype; throws for the dtypes the torch backend has no tensors of (complex64, string). */
export function scalarType(dtype: unknown): number {
  const code = SCALAR_TYPE[dtype as string];
  if (code === undefined) throw new Error(`the torch backend has no ${dtype} tensors`);
  return code;
}

/** `x` itself under another TensorInfo (its data id shared, one more reference), as tfjs's cpu backend does for Identity. */
export function share(b: TorchBackend, x: Info): Info {
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** The addon tensor id of a tfjs input. */
export function id(b: TorchBackend, t: Info): number {
  return b.idOf(t.dataId);
}

/** Runs ops on Raw intermediates and frees every one except the result. */
export function chain(b: TorchBackend, f: (keep: (r: Raw) => Raw) => Raw): Info {
  return chainAll(b, (keep) => [f(keep)])[0];
}

/** `chain` for kernels with several results. */
export function chainAll(b: TorchBackend, f: (keep: (r: Raw) => Raw) => Raw[]): Info[] {
  const temps: Raw[] = [];
  const results = f((r) => {
    temps.push(r);
    return r;
  });
  b.free(...temps.filter((t) => !results.includes(t)));
  return results.map((r) => b.info(r));
}

/**
 * at::matmul of addon tensors through the addon's product (the big-work thread count; bfloat16 under
 * train.precision bf16, native/precision.cc), or plain at::matmul from an addon built before it.
 */
export function product(b: TorchBackend, x: number, y: number): Raw {
  return b.native.product ? b.native.product(x, y) : b.raw('aten::matmul', [x, y]);
}

/** A copy of addon tensor `x` in `dtype`. */
export function castRaw(b: TorchBackend, x: number, dtype: tf.DataType): Raw {
  return b.raw('aten::_to_copy', [x, SCALAR_TYPE[dtype]]);
}

/** Axes as non-negative integers (tfjs accepts a number, an array, negative values, or nothing for all). */
export function axes(axis: unknown, shape: number[]): number[] {
  return tf.util.parseAxisParam(axis as number | number[], shape);
}
