/**
 * Rule-based rewards for RL and GTA completions. Adding a reward is one entry in REWARDS (and its
 * weight in the config's rl.rewards); each component is logged on its own as reward/<name>/mean.
 */
import type { Parsed } from './structure.js';

export const REWARDS = {
  /** 1 when the parsed answer is the gold label. */
  accuracy: (p: Parsed, gold: number) => (p.answer === gold ? 1 : 0),
  /** 1 when the whole structure is well formed (tags in order, known labels, EOS). */
  format: (p: Parsed) => (p.wellFormed ? 1 : 0),
} satisfies Record<string, (p: Parsed, gold: number) => number>;

export type RewardName = keyof typeof REWARDS;
export const REWARD_NAMES = Object.keys(REWARDS) as RewardName[];

export interface Scored {
  total: number[];
  components: Record<RewardName, number[]>;
}

/** Weighted sum of the reward components for each completion. */
export function scoreRewards(parsed: Parsed[], gold: number[], weights: Partial<Record<RewardName, number>>): Scored {
  const components = {} as Record<RewardName, number[]>;
  const total = parsed.map(() => 0);
  for (const name of REWARD_NAMES) {
    const values = parsed.map((p, i) => REWARDS[name](p, gold[i]));
    components[name] = values;
    const w = weights[name] ?? 0;
    values.forEach((v, i) => (total[i] += w * v));
  }
  return { total, components };
}
