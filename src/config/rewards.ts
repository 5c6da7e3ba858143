/**
 * The rewards' names, for the config schema (rl.rewards takes a weight for each). Their functions are in
 * src/task/rewards.ts, typed by these names, so the compiler rejects a reward missing from either.
 */
export const REWARD_NAMES = ['accuracy', 'format'] as const;
export type RewardName = (typeof REWARD_NAMES)[number];
