/**
 * Turns token sequences into model inputs. Rows are left-padded so that they all end in the last
 * column: generation then appends one column for every row at once. Positions restart at 0 at each
 * row's first real token, and the attention bias hides padding and future tokens.
 */
import * as tf from '@tensorflow/tfjs';
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
