/**
 * Decoding with the key/value cache: one full pass over the (left-padded) prompts, then one position
 * per new token for every row at once. What token each row takes is up to a chooser (greedy, sampled,
 * restricted to a structure); rows that have finished keep decoding (the batch stays rectangular) but
 * their later tokens are dropped.
 */
import tf from '../util/tfjs.cjs';
import { smallWork } from '../backend/select.js';
import { disposeCache, NEG_INF, type DecodeCache, type KvCache, type Transformer } from '../model/transformer.js';
import { gatherRows } from '../backend/gather_rows.js';
import { buildInput, disposeInput } from '../model/batch.js';
import { openNativeStep } from './native_step.js';

/**
 * Picks row `row`'s next token from its logits (a [V] view, valid during the call only: the next step
 * may reuse its memory); returns the token and whether the row is done. A chooser that knows a row
 * has no choice next (a forced tag) says so with `forced`, and that row's logits are not computed: it
 * is then called without them.
 */
export interface Chooser {
  choose(row: number, logits: Float32Array | undefined): { token: number; done: boolean };
  forced?(row: number): boolean;
  /** Whether every token the row has left is forced: the loop then takes them at once, without running the model for them. */
  forcedToEnd?(row: number): boolean;
}

export function decode(model: Transformer, unique: number[][], maxNewTokens: number, padId: number, choose: Chooser, repeat = 1): { tokens: number[][]; finished: boolean[] } {
  return smallWork(() => decodeLoop(model, unique, maxNewTokens, padId, choose, repeat));
}

function decodeLoop(model: Transformer, unique: number[][], maxNewTokens: number, padId: number, choose: Chooser, repeat: number): { tokens: number[][]; finished: boolean[] } {
  const V = model.arch.vocab_size;
  const tooLong = unique.findIndex((p) => p.length >= model.arch.max_seq_len);
  if (tooLong >= 0) throw new Error(`prompt ${tooLong} has ${unique[tooLong].length} tokens; the model's context is ${model.arch.max_seq_len}`);
  const prompts = unique.flatMap((p) => Array.from({ length: repeat }, () => p));
  const B = prompts.length;
  const { input, layout: prefill } = buildInput(unique, padId);
  const layout = { ...prefill, B, pad: prefill.pad.flatMap((p) => Array.from({ length: repeat }, () => p)) };
  const out: number[][] = prompts.map(() => []);
  const finished = new Array<boolean>(B).fill(false);
  let logits: tf.Tensor2D | undefined;
  /** The rows `logits` holds, in order (null: every row). */
  let logitRows: number[] | null = null;
  let cache!: DecodeCache;
  tf.tidy(() => {
    // each prompt's prefill once; its copies share its keys and values (and its first logits)
    const r = model.forward(input, { returnCache: true });
    const last = tf.reshape(tf.slice(r.hidden, [0, prefill.T - 1, 0], [unique.length, 1, -1]), [unique.length, -1]) as tf.Tensor2D;
    const first = model.logits(last);
    logits = tf.keep(repeat > 1 ? (tf.gather(first, tf.tensor1d(Int32Array.from({ length: B }, (_, i) => Math.floor(i / repeat)), 'int32')) as tf.Tensor2D) : first);
    cache = { prompt: keepCache(r.cache!), group: repeat, own: null };
  });
  disposeInput(input);
  const budget = Math.min(maxNewTokens, model.arch.max_seq_len - layout.T);
  const next = new Int32Array(B);
  const slot = new Int32Array(B);
  // the whole step in one native call where it applies (native_step.ts); its logits come back as host values
  const native = openNativeStep(model, cache.prompt, layout.pad, repeat, budget - 1);
  let host: Float32Array | undefined;
  try {
    for (let i = 0; i < budget; i++) {
      const all = host ?? (logits ? (logits.dataSync() as Float32Array) : undefined);
      if (logitRows) {
        slot.fill(-1);
        logitRows.forEach((r, j) => (slot[r] = j));
      } else for (let b = 0; b < B; b++) slot[b] = b;
      for (let b = 0; b < B; b++) {
        if (finished[b]) {
          next[b] = padId;
          continue;
        }
        const c = choose.choose(b, all && slot[b] >= 0 ? all.subarray(slot[b] * V, (slot[b] + 1) * V) : undefined);
        next[b] = c.token;
        out[b].push(c.token);
        finished[b] = c.done;
        // a known rest (closing tags, EOS) needs no logits, and no step feeds it: nothing after it is read
        if (!finished[b] && choose.forcedToEnd?.(b)) {
          while (!finished[b] && out[b].length < budget) {
            const t = choose.choose(b, undefined);
            out[b].push(t.token);
            finished[b] = t.done;
          }
        }
      }
      if (finished.every(Boolean) || i === budget - 1) break;
      // the output head (a [rows, vocab] product) only for rows that have a choice to make
      const need: number[] = [];
      for (let b = 0; b < B; b++) if (!finished[b] && !choose.forced?.(b)) need.push(b);
      logitRows = need.length === B ? null : need;
      if (native) {
        logits?.dispose();
        logits = undefined;
        const positions = Int32Array.from(prompts, (p) => p.length + i);
        // every step runs (its keys and values join the cache) even when no row needs logits
        const l = native.step(next, positions, Int32Array.from(need));
        host = need.length > 0 ? l : undefined;
        continue;
      }
      const ids = tf.tensor1d(next, 'int32');
      const positions = tf.tensor1d(prompts.map((p) => p.length + i), 'int32');
      const bias = stepBias(layout.pad, layout.T + i + 1);
      const prev = { logits, cache };
      logits = undefined;
      tf.tidy(() => {
        const r = model.step(ids, positions, bias, prev.cache);
        if (need.length === B) logits = tf.keep(model.logits(r.hidden));
        else if (need.length > 0) logits = tf.keep(model.logits(gatherRows(r.hidden, tf.tensor1d(need, 'int32')) as tf.Tensor2D));
        cache = { ...r.cache, own: keepCache(r.cache.own!) };
      });
      tf.dispose([ids, positions, bias, ...(prev.logits ? [prev.logits] : [])]);
      disposeCache(prev.cache.own);
    }
  } finally {
    native?.close();
  }
  logits?.dispose();
  disposeCache(cache.prompt);
  disposeCache(cache.own);
  return { tokens: out, finished };
}

export interface GenerateOptions {
  maxNewTokens: number;
  stopId: number;
  padId: number;
}

/** Greedy decoding over the whole vocabulary until `stopId`. */
export function greedyGenerate(model: Transformer, prompts: number[][], o: GenerateOptions): number[][] {
  return decode(model, prompts, o.maxNewTokens, o.padId, {
    choose: (_, l) => {
      const token = argmax(l!);
      return { token, done: token === o.stopId };
    },
  }).tokens;
}

export function argmax(l: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  return best;
}

function keepCache(c: KvCache): KvCache {
  return { k: c.k.map((t) => tf.keep(t)), v: c.v.map((t) => tf.keep(t)) };
}

/** [B, 1, 1, Tc]: a new token sees every real (non-padding) key, including itself. */
export function stepBias(pad: number[], Tc: number): tf.Tensor4D {
  const B = pad.length;
  const bias = new Float32Array(B * Tc);
  for (let b = 0; b < B; b++) bias.fill(NEG_INF, b * Tc, b * Tc + pad[b]);
  return tf.tensor4d(bias, [B, 1, 1, Tc]);
}
