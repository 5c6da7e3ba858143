/**
 * Partial credit for ordered labels, a reward module for rl.rewards (src/task/reward_plugins.ts):
 *
 *   rl:
 *     rewards:
 *       - { name: accuracy }
 *       - { name: format }
 *       - { name: ordinal, module: rewards/ordinal.mjs, weight: 0.5 }
 *
 * For SST-5 (very negative, negative, neutral, positive, very positive: datasets/sst5/labels.txt is in
 * that order) an answer one step from the gold label is nearer the truth than one four steps away, which
 * accuracy alone scores the same. The reward is 1 at the gold label and falls linearly with the distance
 * in the label order, to 0 at the far end; 0 with no answer. The order is the dataset's label list.
 */
export default function ordinal(completion, gold, row, { labels }) {
  if (completion.answer === null) return 0;
  const a = labels.indexOf(completion.answer);
  const g = labels.indexOf(gold);
  if (a < 0 || g < 0 || labels.length < 2) return 0;
  return 1 - Math.abs(a - g) / (labels.length - 1);
}
