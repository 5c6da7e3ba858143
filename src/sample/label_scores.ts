/**
 * Whole-label scoring, the decision every mode's evaluation reports as its accuracy. At a position
 * where a label starts (after `<answer>`, or GTA's `<guess>`), each label's tokens and then its closing
 * tag are scored under the distribution structured decoding would sample from there: at each step
 * the softmax over only the tokens the label set allows next (the next tokens of the labels that share
 * the prefix so far, and the closing tag where a label may end there). A label's score is the sum of
 * its tokens' log-probabilities; the choice is the best label. Token-by-token greedy decoding instead
 * commits to a first token by the pooled probability of every label that starts with it (sst5's
 * 'very negative' and 'very positive' both start with 'very').
 */
import tf from '../util/tfjs.cjs';
import { gatherRows } from '../backend/gather_rows.js';
import { buildContinuation, disposeInput } from '../model/batch.js';
import type { Transformer } from '../model/transformer.js';

/** One scored token of a label's continuation: the token, and what decoding would allow in its place. */
export interface LabelStep {
  /** Its index in the continuation (label tokens, then the closing tag). */
  position: number;
  target: number;
  allowed: number[];
}

/**
 * For each label, its continuation (the label's tokens, then `close`) as steps; steps with a single
 * allowed token (forced) are left out, since their log-probability under the restriction is 0.
 */
export function labelSteps(labels: number[][], close: number): LabelStep[][] {
  return labels.map((label) => {
    const cont = [...label, close];
    const steps: LabelStep[] = [];
    cont.forEach((target, j) => {
      const allowed = new Set<number>();
      for (const other of labels) {
        if (!label.slice(0, j).every((t, k) => other[k] === t)) continue;
        allowed.add(j < other.length ? other[j] : close);
      }
      if (allowed.size > 1) steps.push({ position: j, target, allowed: [...allowed].sort((a, b) => a - b) });
    });
    return steps;
  });
}

/** Each label's score (sum of restricted log-probabilities) from `logit(label, step, token)`. */
export function wholeLabelScores(steps: LabelStep[][], logit: (label: number, step: number, token: number) => number): number[] {
  return steps.map((label, l) =>
    label.reduce((sum, s, j) => {
      const values = s.allowed.map((a) => logit(l, j, a));
      const max = Math.max(...values);
      const lse = max + Math.log(values.reduce((acc, v) => acc + Math.exp(v - max), 0));
      return sum + logit(l, j, s.target) - lse;
    }, 0),
  );
}

/** The best label for each prefix (the first of equal scores), and every label's score. */
export function scoreLabels(model: Transformer, prefixes: number[][], labels: number[][], close: number, padId: number): { best: number[]; scores: number[][] } {
  const L = labels.length;
  const steps = labelSteps(labels, close);
  const conts = labels.map((l) => [...l, close]);
  // every token the scores need a logit of: the labels' tokens and the closing tag
  const vocab = [...new Set(steps.flat().flatMap((s) => s.allowed))].sort((a, b) => a - b);
  const column = new Map(vocab.map((id, i) => [id, i]));
  const P = prefixes.length;
  const input = buildContinuation(prefixes, prefixes.flatMap(() => conts), L, padId);
  const rows: number[] = [];
  for (let p = 0; p < P; p++) for (let l = 0; l < L; l++) for (const s of steps[l]) rows.push(input.rowOf(p * L + l, s.position));
  // the tensor out of tidy, then read: tidy walks a returned typed array element by element
  const logits = tf.tidy(() => {
    const all = model.forwardShared(input.prompt, input.completion, L);
    return model.logitsOf(gatherRows(all, tf.tensor1d(rows, 'int32')) as tf.Tensor2D, tf.tensor1d(vocab, 'int32'));
  });
  const values = logits.dataSync() as Float32Array;
  logits.dispose();
  disposeInput(input.prompt);
  disposeInput(input.completion);
  const V = vocab.length;
  const scores: number[][] = [];
  let r = 0;
  for (let p = 0; p < P; p++) {
    const base: number[][] = steps.map((label) => label.map(() => r++));
    scores.push(wholeLabelScores(steps, (l, s, token) => values[base[l][s] * V + column.get(token)!]));
  }
  return { best: scores.map(argmax), scores };
}

/** The first of the largest scores; a NaN score (from a model whose weights went non-finite) never wins, and all NaN gives label 0. */
function argmax(scores: number[]): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best] || (Number.isNaN(scores[best]) && !Number.isNaN(scores[i]))) best = i;
  return best;
}
