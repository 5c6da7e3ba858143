/**
 * Scores a model on a list of examples, the same way for every mode. The decision is whole-label
 * scoring (src/sample/label_scores.ts) at the answer (and GTA's guess): the most probable whole label
 * under structured decoding's restriction, after the structure the mode was trained on (SFT:
 * `<answer>`; RL: a greedy think, then `<answer>`; GTA: the scored guess, a greedy think, then
 * `<answer>`). That is the headline accuracy and F1, and it cannot be invalid. Free generation is
 * measured beside it, as the mode decodes on its own (SFT: greedy over the whole vocabulary until EOS;
 * RL and GTA: their rl.decoding): `generate_accuracy`, `invalid_rate` (no valid label in the output)
 * and, for RL and GTA, the format-valid rate. GTA also reports how the scored answer relates to the
 * scored guess.
 */
import { MODE_TRAITS, type Completion, type Mode } from '../config/modes.js';
import type { Transformer } from '../model/transformer.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { Example } from '../data/types.js';
import { parseAnswer, type PromptBuilder } from '../task/prompt.js';
import { scoreLabels } from '../sample/label_scores.js';
import { sampleCompletions } from '../sample/rollout.js';
import { parseCompletion, structureSpec, type Decoding, type StructureSpec } from '../task/structure.js';
import { Rng } from '../util/rng.js';
import { classificationMetrics, type ClassificationMetrics } from './metrics.js';
import { greedyGenerate } from '../sample/decode.js';

export interface Prediction {
  index: number;
  text: string;
  gold: string;
  /** The scored decision. */
  predicted: string | null;
  correct: boolean;
  /** The scored structure as text (what the decision reads as a completion). */
  output: string;
  guess?: string | null;
  /** Free generation: its output, the label it names (null when none), and for RL and GTA whether its structure is well formed. */
  generated: string;
  generated_predicted: string | null;
  well_formed?: boolean;
}

/** GTA and RL extras: how often generation's structure was valid, and (GTA) the scored guess versus the scored answer. */
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
  /** invalid_rate is free generation's; the rest is the scored decision's, plus generate_accuracy. */
  metrics: ClassificationMetrics & { generate_accuracy: number } & Partial<StructureMetrics>;
  predictions: Prediction[];
  examplesPerSecond: number;
}

export interface EvalContext {
  model: Transformer;
  tokenizer: TextTokenizer;
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
  /** false: no free generation beside the scored decision (predict reads only the decision); its fields stay empty. */
  generate?: boolean;
}

/** One text's decision, as evaluate and predict read it. */
export interface Decoded {
  /** The scored structure's tokens, its answer, and (GTA) its guess. */
  tokens: number[];
  answer: number;
  guess?: number;
  /** Every label's whole-label log-probability at the answer (and GTA's guess): exp() of them sums to 1. */
  scores: number[];
  guessScores?: number[];
  /** Free generation's tokens, the label they name, and whether their structure is well formed (RL, GTA). */
  generated: number[];
  generatedAnswer: number | null;
  wellFormed?: boolean;
}

export function evaluate(ctx: EvalContext, examples: Example[]): EvalResult {
  const start = performance.now();
  const out = decodeTexts(ctx, examples.map((e) => e.text));
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
    generated: ctx.tokenizer.decode(out[i].generated),
    generated_predicted: name(out[i].generatedAnswer),
    ...(ctx.format !== 'answer' ? { well_formed: out[i].wellFormed } : {}),
  }));
  const n = Math.max(1, examples.length);
  const metrics: EvalResult['metrics'] = {
    ...classificationMetrics(gold, out.map((d) => d.answer), ctx.labels),
    invalid_rate: out.filter((d) => d.generatedAnswer === null).length / n,
    generate_accuracy: out.filter((d, i) => d.generatedAnswer === gold[i]).length / n,
  };
  if (ctx.format !== 'answer') Object.assign(metrics, structureMetrics(out, gold, ctx.format === 'gta'));
  const seconds = (performance.now() - start) / 1000;
  return { metrics, predictions, examplesPerSecond: examples.length / Math.max(seconds, 1e-9) };
}

/** The decision for each text, in order; onProgress(done, texts.length) after each batch. */
export function decodeTexts(ctx: EvalContext, texts: string[], onProgress = ctx.onProgress): Decoded[] {
  const prompts = texts.map((t) => ctx.prompts.prompt(t));
  // Batch examples of similar length together: less padding, same results (rows are independent).
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[a].length - prompts[b].length || a - b);
  const out: Decoded[] = new Array(texts.length);
  const decodeBatch = decoder(ctx);
  for (let s = 0; s < order.length; s += ctx.batchSize) {
    const idx = order.slice(s, s + ctx.batchSize);
    decodeBatch(idx.map((i) => prompts[i])).forEach((d, j) => (out[idx[j]] = d));
    onProgress?.(Math.min(s + ctx.batchSize, order.length), order.length);
  }
  return out;
}

function decoder(ctx: EvalContext): (prompts: number[][]) => Decoded[] {
  const tok = ctx.tokenizer;
  const labels = ctx.labels.map((l) => tok.encode(l));
  const [answerOpen, answerClose, guessOpen, guessClose] = (['<answer>', '</answer>', '<guess>', '</guess>'] as const).map((t) => tok.id(t));
  const score = (prefixes: number[][], close: number) => scoreLabels(ctx.model, prefixes, labels, close, tok.padId);
  const answerTail = (label: number) => [...labels[label], answerClose, tok.eosId];
  const greedy = (spec: StructureSpec, decoding: Decoding, prompts: number[][]) =>
    sampleCompletions(ctx.model, prompts, { spec, decoding, temperature: 1, topP: 1, maxNewTokens: ctx.maxNewTokens, greedy: true, rng: new Rng(0), padId: tok.padId });
  if (ctx.format === 'answer') {
    return (prompts) => {
      const { best: answers, scores } = score(prompts.map((p) => [...p, answerOpen]), answerClose);
      const generated = ctx.generate === false ? prompts.map(() => []) : greedyGenerate(ctx.model, prompts, { maxNewTokens: ctx.maxNewTokens, stopId: tok.eosId, padId: tok.padId });
      return prompts.map((_, i) => ({ tokens: [answerOpen, ...answerTail(answers[i])], answer: answers[i], scores: scores[i], generated: generated[i], generatedAnswer: parseAnswer(tok, generated[i], ctx.labels) }));
    };
  }
  const think = ctx.thinkMaxTokens ?? 8;
  const decoding = ctx.decoding ?? 'structured';
  const rlSpec = structureSpec(tok, 'rl', ctx.labels, think);
  const ownSpec = structureSpec(tok, ctx.format, ctx.labels, think);
  /** A greedy structured think after each prefix, up to and including `<answer>`. */
  const upToAnswer = (tokens: number[]) => tokens.slice(0, tokens.indexOf(answerOpen) + 1);
  const thinkThenAnswer = (prefixes: number[][]) => greedy(rlSpec, 'structured', prefixes).map((c) => upToAnswer(c.tokens));
  // RL's own structured generation is that same greedy think from the prompt: reuse it rather than decode twice
  const reuseThink = ctx.format === 'rl' && decoding === 'structured';
  return (prompts) => {
    const generated =
      ctx.generate === false && !reuseThink
        ? prompts.map(() => ({ tokens: [] as number[], parsed: { guess: null, answer: null, wellFormed: false } }))
        : greedy(ownSpec, decoding, prompts).map((c) => ({ tokens: c.tokens, parsed: parseCompletion(ownSpec, c.tokens) }));
    let guessed: { best: number[]; scores: number[][] } | undefined;
    let heads = prompts.map(() => [] as number[]);
    if (ctx.format === 'gta') {
      guessed = score(prompts.map((p) => [...p, guessOpen]), guessClose);
      heads = guessed.best.map((g) => [guessOpen, ...labels[g], guessClose]);
    }
    const thinks = reuseThink ? generated.map((g) => upToAnswer(g.tokens)) : thinkThenAnswer(prompts.map((p, i) => [...p, ...heads[i]]));
    const { best: answers, scores } = score(prompts.map((p, i) => [...p, ...heads[i], ...thinks[i]]), answerClose);
    return prompts.map((_, i) => ({
      tokens: [...heads[i], ...thinks[i], ...answerTail(answers[i])],
      answer: answers[i],
      scores: scores[i],
      ...(guessed ? { guess: guessed.best[i], guessScores: guessed.scores[i] } : {}),
      generated: generated[i].tokens,
      generatedAnswer: generated[i].parsed.answer,
      wellFormed: generated[i].parsed.wellFormed,
    }));
  };
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
