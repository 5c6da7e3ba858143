/**
 * Scores a model on a list of examples: greedy decoding of the answer, the label parsed from
 * <answer>...</answer>, classification metrics and one prediction record per example.
 */
import type { Transformer } from '../model/transformer.js';
import type { Tokenizer } from '../tokenizer/bpe.js';
import type { Example } from '../data/types.js';
import { parseAnswer, type PromptBuilder } from '../train/prompt.js';
import { classificationMetrics, type ClassificationMetrics } from './metrics.js';
import { greedyGenerate } from './generate.js';

export interface Prediction {
  index: number;
  text: string;
  gold: string;
  predicted: string | null;
  correct: boolean;
  output: string;
}

export interface EvalResult {
  metrics: ClassificationMetrics;
  predictions: Prediction[];
  examplesPerSecond: number;
}

export interface EvalContext {
  model: Transformer;
  tokenizer: Tokenizer;
  prompts: PromptBuilder;
  labels: string[];
  batchSize: number;
  maxNewTokens: number;
  /** Called after each batch with the number of examples done. */
  onProgress?: (done: number, total: number) => void;
}

export function evaluate(ctx: EvalContext, examples: Example[]): EvalResult {
  const start = performance.now();
  const prompts = examples.map((e) => ctx.prompts.prompt(e.text));
  // Batch examples of similar length together: less padding, same results (rows are independent).
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[a].length - prompts[b].length || a - b);
  const outputs: number[][] = new Array(examples.length);
  for (let s = 0; s < order.length; s += ctx.batchSize) {
    const idx = order.slice(s, s + ctx.batchSize);
    const gen = greedyGenerate(
      ctx.model,
      idx.map((i) => prompts[i]),
      { maxNewTokens: ctx.maxNewTokens, stopId: ctx.tokenizer.eosId, padId: ctx.tokenizer.padId },
    );
    idx.forEach((i, j) => (outputs[i] = gen[j]));
    ctx.onProgress?.(Math.min(s + ctx.batchSize, order.length), order.length);
  }
  const pred = outputs.map((o) => parseAnswer(ctx.tokenizer, o, ctx.labels));
  const predictions = examples.map((e, i) => ({
    index: i,
    text: e.text,
    gold: ctx.labels[e.label],
    predicted: pred[i] === null ? null : ctx.labels[pred[i]!],
    correct: pred[i] === e.label,
    output: ctx.tokenizer.decode(outputs[i]),
  }));
  const seconds = (performance.now() - start) / 1000;
  return {
    metrics: classificationMetrics(
      examples.map((e) => e.label),
      pred,
      ctx.labels,
    ),
    predictions,
    examplesPerSecond: examples.length / Math.max(seconds, 1e-9),
  };
}
