/**
 * Which completion tokens the RL loss trains, and their log-probabilities under the same restricted
 * distribution they were sampled from (at the sampling temperature). Tokens whose set of choices had
 * one member (tags forced by structured decoding) carry no decision and are left out.
 */
import tf from '../util/tfjs.cjs';
import { tokenLogProbs } from '../backend/fused.js';
import { gatherRows } from '../backend/gather_rows.js';
import { NEG_INF } from '../model/transformer.js';
import { candidates, type Completion } from '../sample/rollout.js';
import { choiceCount, type CompletionFormat, type StructureSpec } from '../task/structure.js';

/** The completion tokens that enter the RL loss, and where they sit in the batch. */
export interface RlTokens {
  /** Row of the flattened [B*T] hidden states that predicts each selected token. */
  rows: Int32Array;
  targets: Int32Array;
  /** The distinct restrictions of the decoding: 0 where it allowed a token, NEG_INF elsewhere (one row per distinct allowed set). */
  biasRows: Float32Array[];
  /** Per selected token, its row of biasRows. */
  biasIndex: Int32Array;
  vocab: number;
  /** [N, L] position of each completion's selected tokens among the M selected ones (M = padding). */
  index: Int32Array;
  /** [N, L] 1 for a real token, 0 for padding. */
  mask: Float32Array;
  M: number;
  N: number;
  L: number;
}

export interface TokenChoice {
  format: CompletionFormat;
  /** GTA(RL): the guess span is trained by the RL loss too. */
  guessInRl?: boolean;
  maskTruncated: boolean;
  spec: StructureSpec;
  vocab: number;
}

/**
 * Whether the RL loss trains token j of completion c: not GTA's guess span (trained by L_SFT instead; in
 * GTA(RL) by this loss too),
 * not a forced token (only one choice: no decision, no gradient), and no token of a truncated
 * completion when those are masked.
 */
function trainedToken(o: TokenChoice): (c: Completion, j: number) => boolean {
  const specials = new Set(o.spec.specials).size;
  return (c, j) => !(o.maskTruncated && c.truncated) && !(o.format === 'gta' && !o.guessInRl && c.spans[j] === 'guess') && choiceCount(c.allowed[j], o.vocab, specials) > 1;
}

/** How many leading tokens of the completions the loss needs: up to the last one it trains (0 for none). */
export function trainedLength(comps: Completion[], o: TokenChoice): number {
  const trains = trainedToken(o);
  let last = 0;
  for (const c of comps) for (let j = c.tokens.length - 1; j > last; j--) if (trains(c, j)) last = j;
  return last;
}

/** Picks the completion tokens the RL loss sees (trainedToken says which), and where they sit in the batch. */
export function selectRlTokens(comps: Completion[], rowOf: (completion: number, token: number) => number, o: TokenChoice): RlTokens {
  const specials = new Set(o.spec.specials);
  const trains = trainedToken(o);
  const rows: number[] = [];
  const targets: number[] = [];
  const biasRows: Float32Array[] = [];
  const biasIndex: number[] = [];
  const biasRowOf = new Map<string, number>();
  const perComp: number[][] = comps.map(() => []);
  comps.forEach((c, i) => {
    c.tokens.forEach((tok, j) => {
      if (!trains(c, j)) return;
      const a = c.allowed[j];
      perComp[i].push(rows.length);
      rows.push(rowOf(i, j));
      targets.push(tok);
      // most tokens share a handful of allowed sets (free think text, the label trie's nodes): one bias row each
      const key = a.kind === 'all' ? 'all' : a.kind === 'text' ? `text ${a.plus}` : `only ${a.ids}`;
      let r = biasRowOf.get(key);
      if (r === undefined) {
        const b = new Float32Array(o.vocab);
        if (a.kind !== 'all') {
          b.fill(NEG_INF);
          for (const id of candidates(a, specials, o.vocab)) b[id] = 0;
        }
        biasRowOf.set(key, (r = biasRows.length));
        biasRows.push(b);
      }
      biasIndex.push(r);
    });
  });
  const M = rows.length;
  const N = comps.length;
  const L = Math.max(1, ...perComp.map((r) => r.length));
  const index = new Int32Array(N * L).fill(M);
  const mask = new Float32Array(N * L);
  perComp.forEach((r, i) => r.forEach((m, j) => ((index[i * L + j] = m), (mask[i * L + j] = 1))));
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets), biasRows, biasIndex: Int32Array.from(biasIndex), vocab: o.vocab, index, mask, M, N, L };
}

/** The tensors rlTokenLogp needs, made once per batch (the caller disposes them). */
export function rlTokenTensors(sel: RlTokens): { biasRows: tf.Tensor2D; biasIndex: tf.Tensor1D; targets: tf.Tensor1D; index: tf.Tensor2D; mask: tf.Tensor2D } {
  return {
    biasRows: tf.tensor2d(concat(sel.biasRows, sel.vocab), [sel.biasRows.length, sel.vocab]),
    biasIndex: tf.tensor1d(sel.biasIndex, 'int32'),
    targets: tf.tensor1d(sel.targets, 'int32'),
    index: tf.tensor2d(sel.index, [sel.N, sel.L], 'int32'),
    mask: tf.tensor2d(sel.mask, [sel.N, sel.L]),
  };
}

/**
 * Log-probabilities [N, L] of the selected tokens under `logits` ([M, V], one row per selected token)
 * at `temperature`, restricted as the decoding was; padding slots read 0. Also the entropy [M] of each
 * restricted distribution (a metric).
 */
export function rlTokenLogp(logits: tf.Tensor2D, t: ReturnType<typeof rlTokenTensors>, sel: RlTokens, temperature: number): { logp: tf.Tensor2D; entropy: tf.Tensor1D } {
  const { logp: picked, entropy } = tokenLogProbs(logits, t.targets, { temperature, bias: { rows: t.biasRows, index: t.biasIndex }, entropy: true });
  const padded = tf.reshape(gatherRows(tf.reshape(tf.concat([picked, tf.zeros([1])]), [sel.M + 1, 1]) as tf.Tensor2D, t.index), [sel.N, sel.L]) as tf.Tensor2D;
  return { logp: padded, entropy: entropy! };
}

function concat(rows: Float32Array[], V: number): Float32Array {
  const out = new Float32Array(rows.length * V);
  rows.forEach((r, i) => out.set(r, i * V));
  return out;
}
