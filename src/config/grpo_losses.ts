/**
 * GRPO's loss types (TRL's loss_type) and what each one's loss is a mean over: the one table the
 * config schema, grpo.ts's reduction (a switch the compiler checks against it) and the weighting of
 * micro-batches and ranks (rl.ts) read. Here, below the training code, so a config validates without it.
 */
export const LOSS_TYPES = {
  /** each completion's token mean, averaged over completions */
  grpo: 'completions',
  /** a mean over the batch's tokens */
  bnpo: 'tokens',
  /** a sum over tokens / (completions x the longest completion possible) */
  dr_grpo: 'completions',
  /** a mean over the global batch's tokens */
  dapo: 'tokens',
} as const satisfies Record<string, 'completions' | 'tokens'>;

export type GrpoLossType = keyof typeof LOSS_TYPES;
export const LOSS_TYPE_NAMES = Object.keys(LOSS_TYPES) as [GrpoLossType, ...GrpoLossType[]];
