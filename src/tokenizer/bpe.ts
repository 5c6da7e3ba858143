/**
 * Deterministic byte-level BPE tokenizer.
 *
 * Vocabulary layout (ids are part of the checkpoint format, so never reorder):
 *   0..8     special tokens, SPECIAL_TOKENS order (<pad>=0, <bos>=1, <eos>=2, ...)
 *   9..264   the 256 single bytes (id = 9 + byte)
 *   265..    merges, in the order they were learned (id = 265 + rank)
 *
 * Text is always encoded as bytes: a literal "<answer>" in the input becomes ordinary byte/merge
 * tokens, never the special id, so data cannot inject control tokens. Special ids are only ever
 * placed by code (see `id()`).
 */
import { createHash } from 'node:crypto';
import { GtaError } from '../util/errors.js';
import { pretokenize } from './pretokenize.js';
import { SPECIAL_TOKENS, type SpecialToken, type TextTokenizer } from './types.js';

export { SPECIAL_TOKENS, type SpecialToken };

const NUM_SPECIALS = SPECIAL_TOKENS.length; // 9
const BYTE_OFFSET = NUM_SPECIALS; // id of byte 0
const FIRST_MERGE_ID = BYTE_OFFSET + 256; // 265

/** Pairs are packed into one number (left * KEY_BASE + right) so Maps key on numbers, not strings. */
const KEY_BASE = 1 << 21;
const MAX_VOCAB = KEY_BASE;

/** Bound on the per-word encoding cache; oldest entries are evicted first. */
const CACHE_LIMIT = 100_000;

export interface TokenizerJSON {
  type: 'byte-bpe';
  version: 1;
  specials: string[];
  merges: [number, number][];
}

export interface TrainOptions {
  /** Total vocabulary: specials + 256 bytes + merges. */
  vocabSize: number;
  /** Stop merging once the most frequent pair occurs fewer times than this (default 2). */
  minFrequency?: number;
}

const utf8 = new TextEncoder();
// ignoreBOM: keep a leading U+FEFF instead of silently stripping it, so round trips are exact.
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

export class Tokenizer implements TextTokenizer {
  readonly padId = 0;
  readonly bosId = 1;
  readonly eosId = 2;

  private readonly merges: readonly (readonly [number, number])[];
  /** pair key -> rank (merged id = FIRST_MERGE_ID + rank). */
  private readonly ranks = new Map<number, number>();
  /** Bytes of every non-special token, indexed by id - BYTE_OFFSET. */
  private readonly tokenBytes: Uint8Array[] = [];
  private readonly cache = new Map<string, number[]>();

  /** Builds a tokenizer from merges assumed valid (use fromJSON for untrusted input). */
  constructor(merges: readonly (readonly [number, number])[] = []) {
    this.merges = merges.map(([a, b]) => [a, b] as const);
    for (let b = 0; b < 256; b++) this.tokenBytes.push(Uint8Array.of(b));
    this.merges.forEach(([a, b], rank) => {
      this.ranks.set(a * KEY_BASE + b, rank);
      const left = this.tokenBytes[a - BYTE_OFFSET];
      const right = this.tokenBytes[b - BYTE_OFFSET];
      const both = new Uint8Array(left.length + right.length);
      both.set(left, 0);
      both.set(right, left.length);
      this.tokenBytes.push(both);
    });
  }

  get vocabSize(): number {
    return FIRST_MERGE_ID + this.merges.length;
  }

  id(special: SpecialToken): number {
    const i = SPECIAL_TOKENS.indexOf(special);
    if (i < 0) throw new Error(`unknown special token ${JSON.stringify(special)}`);
    return i;
  }

  /** The specials, ids 0..8. */
  specialIds(): number[] {
    return SPECIAL_TOKENS.map((_, i) => i);
  }

  /**
   * Learns merges from `texts` by word-frequency BPE. Deterministic: the most frequent adjacent
   * pair wins, ties go to the smallest (left id, right id).
   *
   * Speed: each unique word is stored once with its frequency; pair counts and a
   * pair -> words-containing-it index are updated incrementally, so a merge only touches the
   * words that contain the merged pair. The best pair comes from a max-heap with lazy deletion
   * (stale entries are re-checked against the live count when popped).
   */
  static train(texts: Iterable<string>, opts: TrainOptions): Tokenizer {
    const { vocabSize } = opts;
    const minFrequency = opts.minFrequency ?? 2;
    if (!Number.isInteger(vocabSize) || vocabSize < FIRST_MERGE_ID + 1 || vocabSize > MAX_VOCAB) {
      throw new Error(
        `tokenizer: vocabSize must be an integer in [${FIRST_MERGE_ID + 1}, ${MAX_VOCAB}], got ${vocabSize}`,
      );
    }

    // 1. Unique words and their frequencies.
    const wordFreq = new Map<string, number>();
    for (const text of texts) {
      for (const w of pretokenize(text)) wordFreq.set(w, (wordFreq.get(w) ?? 0) + 1);
    }

    // 2. Each word as a symbol sequence; single-symbol words can never merge, so drop them.
    const words: number[][] = [];
    const freqs: number[] = [];
    for (const [w, f] of wordFreq) {
      const bytes = utf8.encode(w);
      if (bytes.length < 2) continue;
      words.push(Array.from(bytes, (b) => b + BYTE_OFFSET));
      freqs.push(f);
    }

    // 3. Initial pair counts and pair -> word index.
    const pairCount = new Map<number, number>();
    const pairWords = new Map<number, Set<number>>();
    for (let wi = 0; wi < words.length; wi++) {
      const s = words[wi];
      for (let i = 0; i + 1 < s.length; i++) {
        const key = s[i] * KEY_BASE + s[i + 1];
        pairCount.set(key, (pairCount.get(key) ?? 0) + freqs[wi]);
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
    const heap = new PairHeap();
    for (const [key, count] of pairCount) heap.push(count, key);

    // 4. Merge loop.
    const merges: [number, number][] = [];
    const delta = new Map<number, number>();
    while (FIRST_MERGE_ID + merges.length < vocabSize && heap.size > 0) {
      const count = heap.topCount();
      const key = heap.pop();
      const live = pairCount.get(key) ?? 0;
      if (live !== count) {
        // Stale entry. If the count went up, a fresher entry is already in the heap; if it went
        // down, re-queue the true count (keeps the invariant "every pair has an entry >= count").
        if (live > 0 && live < count) heap.push(live, key);
        continue;
      }
      if (count < minFrequency) break;

      const a = Math.floor(key / KEY_BASE);
      const b = key % KEY_BASE;
      const c = FIRST_MERGE_ID + merges.length;
      merges.push([a, b]);

      // Rewrite each affected word; record pair-count changes in `delta`. Words are short, so
      // subtracting all old pairs and adding all new ones is simple and cheap.
      delta.clear();
      const affected = pairWords.get(key)!;
      pairWords.delete(key);
      for (const wi of affected) {
        const old = words[wi];
        const f = freqs[wi];
        const next: number[] = [];
        for (let i = 0; i < old.length; i++) {
          if (i + 1 < old.length && old[i] === a && old[i + 1] === b) {
            next.push(c);
            i++;
          } else {
            next.push(old[i]);
          }
        }
        words[wi] = next;
        const oldKeys: number[] = [];
        for (let i = 0; i + 1 < old.length; i++) {
          const k = old[i] * KEY_BASE + old[i + 1];
          oldKeys.push(k);
          delta.set(k, (delta.get(k) ?? 0) - f);
        }
        const newKeys: number[] = [];
        for (let i = 0; i + 1 < next.length; i++) {
          const k = next[i] * KEY_BASE + next[i + 1];
          newKeys.push(k);
          delta.set(k, (delta.get(k) ?? 0) + f);
          let set = pairWords.get(k);
          if (!set) pairWords.set(k, (set = new Set()));
          set.add(wi);
        }
        for (const k of oldKeys) {
          if (k !== key && !newKeys.includes(k)) pairWords.get(k)?.delete(wi);
        }
      }
      for (const [k, d] of delta) {
        if (d === 0) continue;
        const n = (pairCount.get(k) ?? 0) + d;
        if (n > 0) {
          pairCount.set(k, n);
          if (d > 0) heap.push(n, k);
        } else {
          pairCount.delete(k);
          pairWords.delete(k);
        }
      }
    }
    return new Tokenizer(merges);
  }

  /** Token ids for `text` (no BOS/EOS added). */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const w of pretokenize(text)) {
      let ids = this.cache.get(w);
      if (!ids) {
        ids = this.encodeWord(w);
        if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(w, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  /** GPT-2 style: repeatedly merge the adjacent pair with the lowest rank until none applies. */
  private encodeWord(word: string): number[] {
    let s = Array.from(utf8.encode(word), (b) => b + BYTE_OFFSET);
    while (s.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < s.length; i++) {
        const r = this.ranks.get(s[i] * KEY_BASE + s[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const [a, b] = this.merges[bestRank];
      const c = FIRST_MERGE_ID + bestRank;
      const next: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          next.push(c);
          i++;
        } else {
          next.push(s[i]);
        }
      }
      s = next;
    }
    return s;
  }

  /**
   * Text for `ids`. Specials decode to their literal text (pad to ''); byte runs are decoded as
   * UTF-8 with U+FFFD for invalid sequences (e.g. a sequence cut mid-character).
   */
  decode(ids: number[]): string {
    let out = '';
    let buf: number[] = [];
    const flush = () => {
      if (buf.length > 0) out += utf8Decoder.decode(Uint8Array.from(buf));
      buf = [];
    };
    for (const id of ids) {
      this.checkId(id);
      if (id < NUM_SPECIALS) {
        flush();
        if (id !== this.padId) out += SPECIAL_TOKENS[id];
      } else {
        for (const byte of this.tokenBytes[id - BYTE_OFFSET]) buf.push(byte);
      }
    }
    flush();
    return out;
  }

  /** Human-readable form of one token for debugging: the text, or <0x..> bytes if not valid UTF-8. */
  tokenText(id: number): string {
    this.checkId(id);
    if (id < NUM_SPECIALS) return SPECIAL_TOKENS[id];
    const bytes = this.tokenBytes[id - BYTE_OFFSET];
    const text = utf8Decoder.decode(bytes);
    if (!text.includes('\uFFFD')) return text;
    return '<' + Array.from(bytes, (b) => '0x' + b.toString(16).padStart(2, '0').toUpperCase()).join(' ') + '>';
  }

  toJSON(): TokenizerJSON {
    return {
      type: 'byte-bpe',
      version: 1,
      specials: [...SPECIAL_TOKENS],
      merges: this.merges.map(([a, b]) => [a, b]),
    };
  }

  /** Short sha256 of the canonical JSON, stored with checkpoints to detect a tokenizer mismatch. */
  fingerprint(): string {
    return createHash('sha256').update(JSON.stringify(this.toJSON())).digest('hex').slice(0, 16);
  }

  /** Parses and validates serialized tokenizer JSON (e.g. from a checkpoint on disk). */
  static fromJSON(j: unknown): Tokenizer {
    const fail = (msg: string): never => {
      throw new GtaError(`tokenizer: ${msg}`);
    };
    if (typeof j !== 'object' || j === null || Array.isArray(j)) fail('expected a JSON object');
    const o = j as Record<string, unknown>;
    if (o.type !== 'byte-bpe') fail(`unsupported type ${JSON.stringify(o.type)} (expected "byte-bpe")`);
    if (o.version !== 1) fail(`unsupported version ${JSON.stringify(o.version)} (expected 1)`);
    const specials = o.specials;
    if (
      !Array.isArray(specials) ||
      specials.length !== SPECIAL_TOKENS.length ||
      specials.some((s, i) => s !== SPECIAL_TOKENS[i])
    ) {
      fail(`specials must be exactly ${JSON.stringify(SPECIAL_TOKENS)}`);
    }
    if (!Array.isArray(o.merges)) fail('merges must be an array of [left, right] id pairs');
    const merges: [number, number][] = [];
    const seen = new Set<number>();
    (o.merges as unknown[]).forEach((m, rank) => {
      const maxId = FIRST_MERGE_ID + rank; // a merge may only use tokens that already exist
      if (
        !Array.isArray(m) ||
        m.length !== 2 ||
        !m.every((x) => Number.isInteger(x) && x >= BYTE_OFFSET && x < maxId)
      ) {
        fail(`merge ${rank} must be [left, right] with integer ids in [${BYTE_OFFSET}, ${maxId}), got ${JSON.stringify(m)}`);
      }
      const [a, b] = m as [number, number];
      const key = a * KEY_BASE + b;
      if (seen.has(key)) fail(`merge ${rank} duplicates an earlier merge [${a}, ${b}]`);
      seen.add(key);
      merges.push([a, b]);
    });
    if (FIRST_MERGE_ID + merges.length > MAX_VOCAB) fail(`too many merges (${merges.length})`);
    return new Tokenizer(merges);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`tokenizer: id ${id} out of range [0, ${this.vocabSize})`);
    }
  }
}

/**
 * Binary max-heap of (count, pair key): higher count first, then smaller key, which is the
 * lexicographically smallest (left, right) because key = left * KEY_BASE + right.
 */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  topCount(): number {
    return this.counts[0];
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.keys.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top entry and returns its key. */
  pop(): number {
    const top = this.keys[0];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.keys.length && this.before(l, m)) m = l;
        if (r < this.keys.length && this.before(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i];
    this.counts[i] = this.counts[j];
    this.counts[j] = c;
    const k = this.keys[i];
    this.keys[i] = this.keys[j];
    this.keys[j] = k;
  }
}
