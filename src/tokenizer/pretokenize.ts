/**
 * GPT-2 style pre-tokenization: split text into "words" that BPE merges may never cross.
 * A leading space stays attached to the following word (" movie"), so the same word gets the
 * same tokens wherever it appears mid-sentence. Every character of the input matches exactly one
 * alternative (contraction, letters, digits, other symbols, or whitespace), so joining the pieces
 * gives back the input exactly — encode/decode round-trips depend on that.
 */
const WORD_RE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The pre-tokenized words of `text`, in order; `pretokenize(t).join('') === t`. */
export function pretokenize(text: string): string[] {
  // String.match with a /g regex returns all matches without touching shared lastIndex state.
  return text.match(WORD_RE) ?? [];
}
