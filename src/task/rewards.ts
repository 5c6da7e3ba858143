/**
 * Rule-based rewards for RL and GTA completions: the built-ins here (their names in
 * src/config/rewards.ts) and the user's own from modules (reward_plugins.ts). A run's rewards are a
 * list (rl.rewards); each component is logged on its own as reward/<name>/mean.
 */
import { REWARD_NAMES, type RewardName, type RewardSpec } from '../config/rewards.js';
import { GtaError } from '../util/errors.js';
import type { Parsed } from './structure.js';

export { REWARD_NAMES, type RewardName };

export const REWARDS: { readonly [K in RewardName]: (p: Parsed, gold: number) => number } = {
  /** 1 when the parsed answer is the gold label. */
  accuracy: (p: Parsed, gold: number) => (p.answer === gold ? 1 : 0),
  /** 1 when the whole structure is well formed (tags in order, known labels, EOS). */
  format: (p: Parsed) => (p.wellFormed ? 1 : 0),
};

/** What a reward sees of one completion: its parse, and (for plugins) its text and its example's row. */
export interface RewardInput {
  parsed: Parsed;
  gold: number;
  /** The think span's text and the whole completion's, decoded (plugins only read them). */
  text?: () => { think: string; completion: string };
  /** The example's whole row as the data file held it. */
  row?: Record<string, unknown>;
}

/** One of a run's rewards, ready to score. */
export interface Reward {
  name: string;
  weight: number;
  score(x: RewardInput): number;
}

/** A built-in reward of a spec without a module. */
export function builtinReward(spec: RewardSpec): Reward {
  const fn = REWARDS[spec.name as RewardName];
  if (!fn) throw new GtaError(`rl.rewards: '${spec.name}' is not a built-in reward (${REWARD_NAMES.join(', ')})`);
  return { name: spec.name, weight: spec.weight, score: (x) => fn(x.parsed, x.gold) };
}

export interface Scored {
  total: number[];
  components: Record<string, number[]>;
}

/** Weighted sum of the reward components for each completion. */
export function scoreRewards(inputs: RewardInput[], rewards: Reward[]): Scored {
  const components: Record<string, number[]> = {};
  const total = inputs.map(() => 0);
  for (const r of rewards) {
    const values = inputs.map((x) => r.score(x));
    components[r.name] = values;
    values.forEach((v, i) => (total[i] += r.weight * v));
  }
  return { total, components };
}
