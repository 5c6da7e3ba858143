/**
 * Turns token sequences into model inputs. Rows are left-padded so that they all end in the last
 * column: generation then appends one column for every row at once. Positions restart at 0 at each
 * row's first real token, and the attention bias hides padding and future tokens.
 */
import tf from '../util/tfjs.cjs';
import { NEG_INF, type ModelInput } from './transformer.js';

export interface BatchLayout {
  B: number;
  T: number;
  /** Left padding of each row. */
  pad: number[];
}

export function layout(seqs: number[][], padTo = 0): BatchLayout {
  const T = Math.max(padTo, ...seqs.map((s) => s.length));
  return { B: seqs.length, T, pad: seqs.map((s) => T - s.length) };
}

/** ids, positions and the causal + padding bias for a batch of sequences. */
export function buildInput(seqs: number[][], padId: number): { input: ModelInput; layout: BatchLayout } {
  const lay = layout(seqs);
  const { B, T, pad } = lay;
  const ids = new Int32Array(B * T).fill(padId);
  const pos = new Int32Array(B * T);
  const bias = new Float32Array(B * T * T).fill(NEG_INF);
  for (let b = 0; b < B; b++) {
    const p = pad[b];
    ids.set(seqs[b], b * T + p);
    for (let t = p; t < T; t++) {
      pos[b * T + t] = t - p;
      // query t sees keys p..t
      bias.fill(0, b * T * T + t * T + p, b * T * T + t * T + t + 1);
    }
  }
  return {
    input: {
      ids: tf.tensor2d(ids, [B, T], 'int32'),
      positions: tf.tensor2d(pos, [B, T], 'int32'),
      bias: tf.tensor4d(bias, [B, 1, T, T]),
    },
    layout: lay,
  };
}

/**
 * Where the loss applies: for every row, the tokens from index `from[b]` on are targets, each
 * predicted by the hidden state one column to its left. Returns flat indices into [B*T] rows of the
 * hidden states and the target ids (prompt positions never appear here, so they carry no loss).
 */
export function targetPositions(seqs: number[][], from: number[], lay: BatchLayout): { rows: Int32Array; targets: Int32Array } {
  const rows: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < seqs.length; b++) {
    if (from[b] < 1) throw new Error('a target needs at least one token before it');
    for (let j = from[b]; j < seqs[b].length; j++) {
      rows.push(b * lay.T + lay.pad[b] + j - 1);
      targets.push(seqs[b][j]);
    }
  }
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets) };
}

export function disposeInput(input: ModelInput): void {
  tf.dispose([input.ids, input.positions, input.bias]);
}

/** The row predicting token j after prompt i in a forward pass over prompt + continuation sequences (buildInput's layout, flattened to [B*T]). */
export function concatenatedRows(promptLengths: number[], layout: BatchLayout): (i: number, j: number) => number {
  return (i, j) => i * layout.T + layout.pad[i] + promptLengths[i] + j - 1;
}

/**
 * The inputs of Transformer.forwardShared: the distinct prompts (left-padded, as buildInput), and each
 * row's continuation after its group's prompt, right-padded to the longest: its positions go on from
 * the prompt's length, and each token sees its prompt's real tokens and the continuation's tokens up
 * to itself. Rows come in groups of `group` consecutive rows per prompt.
 */
export function buildContinuation(
  prompts: number[][],
  continuations: number[][],
  group: number,
  padId: number,
): { prompt: ModelInput; completion: ModelInput; width: number; rowOf: (i: number, j: number) => number } {
  const { input: prompt, layout: pl } = buildInput(prompts, padId);
  const B = continuations.length;
  if (B !== prompts.length * group) throw new Error(`${B} continuations for ${prompts.length} prompts in groups of ${group}`);
  const Tc = Math.max(1, ...continuations.map((c) => c.length));
  const Tp = pl.T;
  const ids = new Int32Array(B * Tc).fill(padId);
  const pos = new Int32Array(B * Tc);
  const bias = new Float32Array(B * Tc * (Tp + Tc)).fill(NEG_INF);
  for (let b = 0; b < B; b++) {
    const g = Math.floor(b / group);
    const len = prompts[g].length;
    ids.set(continuations[b], b * Tc);
    for (let j = 0; j < Tc; j++) {
      pos[b * Tc + j] = len + j;
      const row = (b * Tc + j) * (Tp + Tc);
      // the prompt's real columns, then the continuation up to and including j
      bias.fill(0, row + pl.pad[g], row + Tp);
      bias.fill(0, row + Tp, row + Tp + j + 1);
    }
  }
  return {
    prompt,
    completion: { ids: tf.tensor2d(ids, [B, Tc], 'int32'), positions: tf.tensor2d(pos, [B, Tc], 'int32'), bias: tf.tensor4d(bias, [B, 1, Tc, Tp + Tc]) },
    width: Tc,
    // the row of forwardShared's output that predicts token j of continuation i: its prompt's last for j = 0, else its own j - 1
    rowOf: (i, j) => (j === 0 ? Math.floor(i / group) : prompts.length + i * Tc + j - 1),
  };
}
