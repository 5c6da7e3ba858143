/**
 * What a training checkpoint's trainer_state.json holds, typed and checked once: the loop's part
 * (LoopState) and each runner's (its RNG streams and counters). A resume parses the file with these
 * schemas, so a damaged or foreign state is a one-line error naming the file and the key, never a
 * run that continues from `undefined`. Each runner's state() returns its type, and restore() takes
 * what parseState gives back.
 */
import { z } from 'zod';
import { GtaError } from '../util/errors.js';

const count = z.number().int().nonnegative();
/** xoshiro128's four 32-bit words (src/util/rng.ts). */
const RngStateSchema = z.tuple([z.number(), z.number(), z.number(), z.number()]);
const SamplerPositionSchema = z.object({ epoch: count, batch: count });

export const SftStateSchema = z.object({ dropout_rng: RngStateSchema });
export const RlStateSchema = z.object({ sampling_rng: RngStateSchema });
export const GtaStateSchema = z.object({ sampling_rng: RngStateSchema, conflicts: count, steps: count });
export const SftThenRlStateSchema = z.object({ steps: count, sft_position: SamplerPositionSchema, sft: SftStateSchema, rl: RlStateSchema });

/** Everything the loop carries from step to step, so a resume continues exactly. */
export const LoopStateSchema = z.object({
  step: count,
  position: SamplerPositionSchema,
  best: z.object({ step: count, score: z.number(), keep: z.record(z.string(), z.number()) }).nullable(),
  /** Periodic evals since the last that beat the best by more than early_stopping.min_delta. */
  evals_since_best: count.optional(),
  tokens_seen: z.number().nonnegative(),
  /** Training items consumed (labelled examples for SFT and pretraining sequences, prompts for RL and GTA); absent in checkpoints from before it. */
  examples_seen: z.number().nonnegative().optional(),
  /** Metric sums of the log window in progress (so a resume writes the same averaged lines). */
  window: z.object({ sums: z.record(z.string(), z.number()), steps: count, tokens: z.number().nonnegative() }),
  elapsed_s: z.number().nonnegative(),
  last_samples: z.array(z.record(z.string(), z.unknown())),
  /** The runner's state (one process); its runner's schema checks it. */
  runner: z.unknown(),
  /** Data-parallel runs: how many ranks, and each rank's runner state (its own RNG streams), in rank order. */
  world_size: count.optional(),
  ranks: z.array(z.unknown()).optional(),
});

export type SftState = z.infer<typeof SftStateSchema>;
export type RlState = z.infer<typeof RlStateSchema>;
export type GtaState = z.infer<typeof GtaStateSchema>;
export type SftThenRlState = z.infer<typeof SftThenRlStateSchema>;
export type LoopState = z.infer<typeof LoopStateSchema>;

/** `value` checked against `schema`; a GtaError naming the first wrong key (the caller adds the file). */
export function parseState<S extends z.ZodType>(schema: S, value: unknown, what = 'trainer state'): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new GtaError(`${what}${issue.path.length ? ` key ${issue.path.join('.')}` : ''}: ${issue.message}`);
}
