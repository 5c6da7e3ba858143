/**
 * Scores a model on a list of examples: greedy decoding, the label parsed from <answer>...</answer>,
 * classification metrics and one prediction record per example. SFT runs decode freely until EOS;
 * RL and GTA runs decode their completion format (free or structured, as they were trained) and also
 * report the format-valid rate and, for GTA, how the answer relates to the guess.
 */
import { MODE_TRAITS, type Completion, type Mode } from '../config/modes.js';
import type { Transformer } from '../model/transformer.js';
import type { Tokenizer } from '../tokenizer/bpe.js';
import type { Example } from '../data/types.js';
import { parseAnswer, type PromptBuilder } from '../task/prompt.js';
import { sampleCompletions } from '../sample/rollout.js';
import { parseCompletion, structureSpec, type Decoding } from '../task/structure.js';
import { Rng } from '../util/rng.js';
import { classificationMetrics, type ClassificationMetrics } from './metrics.js';
import { greedyGenerate } from '../sample/decode.js';

export interface Prediction {
  index: number;
  text: string;
  gold: string;
  predicted: string | null;
  correct: boolean;
  output: string;
  guess?: string | null;
  well_formed?: boolean;
}

/** GTA and RL extras: how often the structure was valid, and (GTA) guess versus answer. */
export interface StructureMetrics {
  format_valid_rate: number;
  guess_accuracy?: number;
  /** Share of examples whose answer differs from a valid guess. */
  revision_rate?: number;
  /** Revisions that turned a wrong guess into a right answer, and a right guess into a wrong one. */
  revisions_fixed?: number;
  revisions_broke?: number;
}

export interface EvalResult {
  metrics: ClassificationMetrics & Partial<StructureMetrics>;
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
  /** How completions look: SFT's bare answer, or the RL / GTA structure. */
  format: Completion;
  decoding?: Decoding;
  thinkMaxTokens?: number;
  /** Called after each batch with the number of examples done. */
  onProgress?: (done: number, total: number) => void;
}

interface Decoded {
  tokens: number[];
  answer: number | null;
  guess?: number | null;
  wellFormed?: boolean;
}

export function evaluate(ctx: EvalContext, examples: Example[]): EvalResult {
  const start = performance.now();
  const prompts = examples.map((e) => ctx.prompts.prompt(e.text));
  // Batch examples of similar length together: less padding, same results (rows are independent).
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[a].length - prompts[b].length || a - b);
  const out: Decoded[] = new Array(examples.length);
  const decodeBatch = decoder(ctx);
  for (let s = 0; s < order.length; s += ctx.batchSize) {
    const idx = order.slice(s, s + ctx.batchSize);
    decodeBatch(idx.map((i) => prompts[i])).forEach((d, j) => (out[idx[j]] = d));
    ctx.onProgress?.(Math.min(s + ctx.batchSize, order.length), order.length);
  }
  const gold = examples.map((e) => e.label);
  const name = (i: number | null | undefined) => (i === null || i === undefined ? null : ctx.labels[i]);
  const predictions: Prediction[] = examples.map((e, i) => ({
    index: i,
    text: e.text,
    gold: ctx.labels[e.label],
    predicted: name(out[i].answer),
    correct: out[i].answer === e.label,
    output: ctx.tokenizer.decode(out[i].tokens),
    ...(ctx.format === 'gta' ? { guess: name(out[i].guess) } : {}),
    ...(ctx.format !== 'answer' ? { well_formed: out[i].wellFormed } : {}),
  }));
  const metrics: EvalResult['metrics'] = classificationMetrics(gold, out.map((d) => d.answer), ctx.labels);
  if (ctx.format !== 'answer') Object.assign(metrics, structureMetrics(out, gold, ctx.format === 'gta'));
  const seconds = (performance.now() - start) / 1000;
  return { metrics, predictions, examplesPerSecond: examples.length / Math.max(seconds, 1e-9) };
}

function decoder(ctx: EvalContext): (prompts: number[][]) => Decoded[] {
  const tok = ctx.tokenizer;
  if (ctx.format === 'answer') {
    return (prompts) =>
      greedyGenerate(ctx.model, prompts, { maxNewTokens: ctx.maxNewTokens, stopId: tok.eosId, padId: tok.padId }).map((tokens) => ({
        tokens,
        answer: parseAnswer(tok, tokens, ctx.labels),
      }));
  }
  const spec = structureSpec(tok, ctx.format, ctx.labels, ctx.thinkMaxTokens ?? 8);
  return (prompts) =>
    sampleCompletions(ctx.model, prompts, {
      spec,
      decoding: ctx.decoding ?? 'structured',
      temperature: 1,
      topP: 1,
      maxNewTokens: ctx.maxNewTokens,
      greedy: true,
      rng: new Rng(0),
      padId: tok.padId,
    }).map((c) => {
      const p = parseCompletion(spec, c.tokens);
      return { tokens: c.tokens, answer: p.answer, guess: p.guess, wellFormed: p.wellFormed };
    });
}

export function structureMetrics(out: { answer: number | null; guess?: number | null; wellFormed?: boolean }[], gold: number[], gta: boolean): StructureMetrics {
  const n = Math.max(1, out.length);
  const m: StructureMetrics = { format_valid_rate: out.filter((d) => d.wellFormed).length / n };
  if (gta) {
    let guessRight = 0;
    let revised = 0;
    let fixed = 0;
    let broke = 0;
    out.forEach((d, i) => {
      if (d.guess === gold[i]) guessRight++;
      if (d.guess !== null && d.guess !== undefined && d.answer !== null && d.answer !== d.guess) {
        revised++;
        if (d.answer === gold[i]) fixed++;
        if (d.guess === gold[i]) broke++;
      }
    });
    Object.assign(m, { guess_accuracy: guessRight / n, revision_rate: revised / n, revisions_fixed: fixed, revisions_broke: broke });
  }
  return m;
}

/** The completion format and decoding a run's config implies for evaluation. */
export function evalFormat(cfg: { mode: Mode; rl: { decoding: Decoding; think_max_tokens: number } }): Pick<EvalContext, 'format' | 'decoding' | 'thinkMaxTokens'> {
  const format = MODE_TRAITS[cfg.mode].completion;
  return format === 'answer' ? { format } : { format, decoding: cfg.rl.decoding, thinkMaxTokens: cfg.rl.think_max_tokens };
}
