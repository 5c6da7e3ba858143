/**
 * Keeps benchmark evaluation text out of the pretraining corpus. Two rules, both on normalised words
 * (normalize.ts: lowercase, no punctuation, single spaces):
 * - exact: the corpus line's words equal an evaluation example's;
 * - ngram: the corpus line contains a run of N consecutive words (default 8) that also occurs in an
 *   evaluation example. This is containment, not similarity: a dev sentence quoted inside a long
 *   paragraph, or one with a word changed, still shares a long run of words with it, while a whole-text
 *   similarity (MinHash/Jaccard over a paragraph) would stay low and let it through. So it is a set
 *   lookup per window, written here rather than taken from a MinHash library.
 * Examples shorter than N words are caught by the exact rule only.
 */
import { matchWords } from './normalize.js';

export type DedupRule = 'exact' | 'ngram';

export const DEFAULT_NGRAM = 8;

/** cyrb53: a 53-bit string hash, so a set of millions of n-grams holds numbers, not strings. Collisions at 2^-53 only remove a line. */
function hash53(s: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

function* windows(words: string[], n: number): Generator<number> {
  for (let i = 0; i + n <= words.length; i++) yield hash53(words.slice(i, i + n).join(' '));
}

export class EvalIndex {
  private readonly exact = new Set<string>();
  private readonly grams = new Set<number>();
  texts = 0;

  constructor(readonly n = DEFAULT_NGRAM) {}

  add(text: string): void {
    const words = matchWords(text);
    if (words.length === 0) return;
    this.texts++;
    this.exact.add(words.join(' '));
    for (const h of windows(words, this.n)) this.grams.add(h);
  }

  get ngrams(): number {
    return this.grams.size;
  }

  /** The rule a corpus line breaks, or undefined when it is clean. */
  match(line: string): DedupRule | undefined {
    const words = matchWords(line);
    if (this.exact.has(words.join(' '))) return 'exact';
    for (const h of windows(words, this.n)) if (this.grams.has(h)) return 'ngram';
    return undefined;
  }
}

