/**
 * Text normalisation for the pretraining corpus: `cleanLine` is what a corpus line looks like (plain
 * text, single spaces), `matchKey` and `matchWords` are what deduplication compares (case, punctuation
 * and spacing never make two texts different).
 */

/** One line of plain text: Unicode-composed, typographic quotes and dashes made ASCII, whitespace collapsed. */
export function cleanLine(s: string): string {
  return s
    .normalize('NFKC')
    .replace(/[\u2018\u2019\u201B]/g, "'")
    .replace(/[\u201C\u201D\u201F]/g, '"')
    .replace(/[\u2013\u2014]/g, ' - ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Lowercase letters and digits only, as words: the form exact and n-gram matching compare. */
export function matchWords(s: string): string[] {
  return s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/\u2019/g, "'")
    // treebank-tokenised benchmarks (SST) split contractions: "it 's", "do n't" must match "it's", "don't"
    .replace(/\s+(?=(n't|'s|'re|'ve|'ll|'d|'m)(?![\p{L}\p{N}]))/gu, '')
    // an apostrophe joins ("don't" = "dont") rather than splits
    .replace(/'/g, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== '');
}

/** The exact-duplicate key: the words, joined by single spaces. */
export function matchKey(s: string): string {
  return matchWords(s).join(' ');
}
