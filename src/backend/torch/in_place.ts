/**
 * Updates written into a tensor's own storage on the torch backend, where tfjs would make a new tensor
 * and keep the old one alive until it is replaced: AdamW into the parameter and its moments
 * (native/adamw.cc adamwInPlace; a step then holds no second copy of the weights and moments, 12
 * bytes a parameter, 7 GB for a 0.6B model), and a gradient added into the sum it accumulates into
 * (src/backend/lean_grads.ts; no third [vocab, d] tensor where a tied embedding's two gradients meet),
 * and GTA's combined gradient into the SFT gradient it is made from (no third gradient set).
 *
 * tfjs tensors are immutable and a data id may be shared (a variable shares its initial tensor's,
 * `clone()` and `reshape` share their source's), so a tensor is written in place only where it alone
 * holds its data; elsewhere these return false and the caller makes a new tensor as before.
 */
import tf from '../../util/tfjs.cjs';
import type { AdamWStep } from '../fused.js';
import { TorchBackend } from './backend.js';

/** The torch backend, when every tensor of `sole` alone holds its data and every one of `read` is on it. */
function owner(sole: tf.Tensor[], read: tf.Tensor[]): TorchBackend | null {
  const b = tf.backend();
  if (!(b instanceof TorchBackend)) return null;
  if (!sole.every((t) => b.holds(t.dataId) && b.refCount(t.dataId) === 1) || !read.every((t) => b.holds(t.dataId))) return null;
  return b;
}

/** Updates p, m and v in place and returns true, or returns false (not the torch backend, an addon without it, or shared data). */
export function adamwInPlace(p: tf.Variable, g: tf.Tensor, m: tf.Variable, v: tf.Variable, decay: boolean, s: AdamWStep): boolean {
  const b = owner([p, m, v], [g]);
  if (!b?.native.adamwInPlace) return false;
  const id = (t: tf.Tensor) => [b.idOf(t.dataId)];
  b.native.adamwInPlace(id(p), id(g), id(m), id(v), { ...s, decay: [decay] });
  return true;
}

/** acc += x in place (same shape, float32) and true, or false where acc cannot be written. */
export function addInPlace(acc: tf.Tensor, x: tf.Tensor): boolean {
  const b = owner([acc], [x]);
  if (!b || acc.dtype !== 'float32' || x.dtype !== 'float32' || !tf.util.arraysEqual(acc.shape, x.shape)) return false;
  b.free(b.raw('aten::add_.Tensor', [b.idOf(acc.dataId), b.idOf(x.dataId)]));
  return true;
}

/** a = ca * a + cb * b in place (the arithmetic of the fused linear combination: a * ca, then + cb * b) and true, or false where a cannot be written. */
export function combineInPlace(a: tf.Tensor, b: tf.Tensor, ca: number, cb: number): boolean {
  const be = owner([a], [b]);
  if (!be || a.dtype !== 'float32' || b.dtype !== 'float32' || !tf.util.arraysEqual(a.shape, b.shape)) return false;
  const [ia, ib] = [be.idOf(a.dataId), be.idOf(b.dataId)];
  be.free(be.raw('aten::mul_.Scalar', [ia, ca]));
  be.free(be.raw('aten::add_.Tensor', [ia, ib, cb]));
  return true;
}

/**
 * New values for a variable: written into its own storage where it alone holds it (keeping a
 * bfloat16-stored weight or moment in bfloat16, train.precision bf16-true), else tfjs's assign.
 */
export function assignInPlace(v: tf.Variable, values: tf.Tensor): void {
  const b = owner([v], [values]);
  if (b?.native.copyInto && tf.util.arraysEqual(v.shape, values.shape)) b.native.copyInto(b.idOf(v.dataId), b.idOf(values.dataId));
  else v.assign(values);
}
