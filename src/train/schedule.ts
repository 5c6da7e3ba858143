import type { OptimConfig } from '../config/schema.js';

/** Learning rate at `step` (0-based): linear warmup, then cosine/linear decay to lr * min_lr_ratio, or constant. */
export function learningRate(step: number, totalSteps: number, o: OptimConfig): number {
  if (o.warmup_steps > 0 && step < o.warmup_steps) return (o.lr * (step + 1)) / o.warmup_steps;
  if (o.schedule === 'constant') return o.lr;
  const span = Math.max(1, totalSteps - o.warmup_steps);
  const progress = Math.min(1, (step - o.warmup_steps) / span);
  const floor = o.lr * o.min_lr_ratio;
  const shape = o.schedule === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return floor + (o.lr - floor) * shape;
}
