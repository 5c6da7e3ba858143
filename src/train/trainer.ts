/**
 * Where every mode's step ends: the trainable set (every weight, or LoRA's adapters alone), AdamW over
 * it, and applyStep (the finite checks, clipping, the update, the gradients' disposal). A mode computes
 * gradients; what is trained and how an update is applied are decided here, once.
 */
import tf from '../util/tfjs.cjs';
import type { OptimConfig } from '../config/schema.js';
import type { Transformer } from '../model/transformer.js';
import { AdamW, NonFiniteError } from './adamw.js';
import type { Grads } from './grad_constraint.js';

export class Trainer {
  readonly optimizer: AdamW;

  constructor(
    readonly model: Transformer,
    optim: OptimConfig,
  ) {
    this.optimizer = new AdamW(model.trainable(), optim);
  }

  /**
   * One update from `grads` (by parameter name, every trainable parameter) at learning rate `lr`, after
   * checking each named loss (in order) and the gradient for NaN and Inf: a NonFiniteError leaves the
   * weights as they were. The gradients are disposed whatever happens. Returns their global norm before clipping.
   */
  applyStep(grads: Grads, losses: Record<string, number>, lr: number): number {
    try {
      for (const [name, value] of Object.entries(losses)) if (!Number.isFinite(value)) throw new NonFiniteError(`loss ${name}`);
      return this.optimizer.apply(grads, lr);
    } finally {
      tf.dispose(Object.values(grads));
    }
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}
