/**
 * Labels for texts without gold labels (`gta predict`): the decision evaluate() scores, as one JSON
 * object a text: the label, every label's whole-label log-probability (their exp() sums to 1), and for
 * RL and GTA the think and answer of the scored structure (GTA: the guess, and its scores, too).
 */
import type { Decoded, EvalContext } from './evaluate.js';

export interface PredictionLine {
  /** The input's line the text starts on. */
  line: number;
  text: string;
  label: string;
  scores: Record<string, number>;
  guess?: string;
  guess_scores?: Record<string, number>;
  think?: string;
  answer?: string;
}

export function predictionLine(ctx: Pick<EvalContext, 'tokenizer' | 'labels' | 'format'>, input: { line: number; text: string }, d: Decoded): PredictionLine {
  const named = (scores: number[]) => Object.fromEntries(ctx.labels.map((l, i) => [l, round(scores[i])]));
  const out: PredictionLine = { line: input.line, text: input.text, label: ctx.labels[d.answer], scores: named(d.scores) };
  if (d.guess !== undefined && d.guessScores) Object.assign(out, { guess: ctx.labels[d.guess], guess_scores: named(d.guessScores) });
  if (ctx.format !== 'answer') {
    const tok = ctx.tokenizer;
    const open = d.tokens.indexOf(tok.id('<think>'));
    const close = d.tokens.indexOf(tok.id('</think>'));
    Object.assign(out, { think: open >= 0 && close > open ? tok.decode(d.tokens.slice(open + 1, close)) : '', answer: ctx.labels[d.answer] });
  }
  return out;
}

/** Log-probabilities to 6 decimals: enough to rank and to exp(), short lines. */
function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
