/**
 * Dot products and squared norms over whole gradient sets (all parameters together), as gradient
 * clipping and GTA's gradient constraint take them: one addon call on the torch backend
 * (native/grad_stats.cc, no copies, accumulated in double), else the tfjs composite with one read back.
 */
import tf from '../util/tfjs.cjs';
import { TorchBackend } from './torch/backend.js';

export interface Dots {
  ab: number;
  aa: number;
  bb: number;
}

/** [a·b, |a|², |b|²] over pairs of tensors of equal shapes; without b, |a|² (ab and bb are |a|² too). */
export function gradDots(a: tf.Tensor[], b?: tf.Tensor[]): Dots {
  if (b && b.length !== a.length) throw new Error(`gradDots: ${a.length} tensors against ${b.length}`);
  const backend = tf.getBackend() === 'torch' ? tf.backend() : undefined;
  if (backend instanceof TorchBackend && backend.native.gradDots && a.length > 0) {
    const all = b ? [...a, ...b] : a;
    if (all.every((t) => backend.holds(t.dataId))) {
      const ids = (ts: tf.Tensor[]) => ts.map((t) => backend.idOf(t.dataId));
      const [ab, aa, bb] = backend.native.gradDots(ids(a), b ? ids(b) : undefined);
      return { ab, aa, bb };
    }
  }
  if (!b) {
    const n = tf.tidy(() => (a.length ? tf.addN(a.map((g) => tf.sum(tf.square(g)))) : tf.scalar(0)).dataSync()[0]);
    return { ab: n, aa: n, bb: n };
  }
  const v = tf.tidy(() => {
    let acc = tf.zeros([3]);
    a.forEach((x, i) => (acc = tf.add(acc, tf.stack([tf.sum(tf.mul(x, b[i])), tf.sum(tf.square(x)), tf.sum(tf.square(b[i]))]))));
    return acc;
  });
  const [ab, aa, bb] = v.dataSync();
  v.dispose();
  return { ab, aa, bb };
}
