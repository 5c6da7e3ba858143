/**
 * Gradient accumulation (train.grad_accum_steps): a batch's gradient as the sum of its micro-batches',
 * each micro-batch's loss weighted by its share of the batch's normaliser (its target tokens, its
 * completions), so the sum is the whole batch's gradient: only one micro-batch's activations are alive
 * at a time. The same weighting as data-parallel ranks (src/parallel/world.ts meanGrads).
 */
import tf from '../util/tfjs.cjs';
import { addInPlace } from '../backend/torch/in_place.js';
import type { Grads } from './grad_constraint.js';

/**
 * `items` in at most `parts` contiguous micro-batches of whole groups (`group` consecutive items each:
 * an RL prompt's completions), as even as they divide; never an empty one.
 */
export function microBatches<T>(items: T[], parts: number, group = 1): T[][] {
  const groups = Math.ceil(items.length / group);
  const n = Math.max(1, Math.min(parts, groups));
  const out: T[][] = [];
  for (let k = 0, at = 0; k < n; k++) {
    const take = Math.floor(groups / n) + (k < groups % n ? 1 : 0);
    out.push(items.slice(at * group, (at + take) * group));
    at += take;
  }
  return out;
}

/** acc + more, added into acc's tensors where the backend can; `more` is disposed (or becomes the sum when acc is empty). */
export function addGrads(acc: Grads | undefined, more: Grads): Grads {
  if (!acc) return more;
  for (const [k, g] of Object.entries(more)) {
    const a = acc[k];
    if (!a) acc[k] = g;
    else {
      if (!addInPlace(a, g)) {
        acc[k] = tf.add(a, g);
        a.dispose();
      }
      g.dispose();
    }
  }
  return acc;
}

/** A loss scaled by a micro-batch's weight (unchanged for a whole batch, so one micro-batch computes exactly as before). */
export function weighted(loss: tf.Scalar, weight: number): tf.Scalar {
  return weight === 1 ? loss : tf.mul(loss, weight);
}
