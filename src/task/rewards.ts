/**
 * Rule-based rewards for RL and GTA completions. Adding a reward is its name in src/config/rewards.ts
 * (the config's rl.rewards takes a weight for each) and its function here; each component is logged on
 * its own as reward/<name>/mean.
 */
import { REWARD_NAMES, type RewardName } from '../config/rewards.js';
import type { Parsed } from './structure.js';

export { REWARD_NAMES, type RewardName };

export const REWARDS: { readonly [K in RewardName]: (p: Parsed, gold: number) => number } = {
  /** 1 when the parsed answer is the gold label. */
  accuracy: (p: Parsed, gold: number) => (p.answer === gold ? 1 : 0),
  /** 1 when the whole structure is well formed (tags in order, known labels, EOS). */
  format: (p: Parsed) => (p.wellFormed ? 1 : 0),
};

export interface Scored {
  total: number[];
  components: Record<RewardName, number[]>;
}

/** Weighted sum of the reward components for each completion. */
export function scoreRewards(parsed: Parsed[], gold: number[], weights: Record<RewardName, number>): Scored {
  const components = {} as Record<RewardName, number[]>;
  const total = parsed.map(() => 0);
  for (const name of REWARD_NAMES) {
    const values = parsed.map((p, i) => REWARDS[name](p, gold[i]));
    components[name] = values;
    values.forEach((v, i) => (total[i] += weights[name] * v));
  }
  return { total, components };
}
