/**
 * The built-in rewards' names, for the config schema. Their functions are in src/task/rewards.ts,
 * typed by these names, so the compiler rejects a reward missing from either. `rl.rewards` may also
 * name rewards of the user's own, each in a module (src/task/reward_plugins.ts).
 */
export const REWARD_NAMES = ['accuracy', 'format'] as const;
export type RewardName = (typeof REWARD_NAMES)[number];

/** One reward of a run: a built-in (no module) or a function a module exports, and its weight. */
export interface RewardSpec {
  name: string;
  weight: number;
  module?: string;
}

export function isBuiltinReward(name: string): name is RewardName {
  return (REWARD_NAMES as readonly string[]).includes(name);
}
