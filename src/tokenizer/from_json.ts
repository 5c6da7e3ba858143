/** A checkpoint's tokenizer.json, whichever tokenizer wrote it (its `type`). */
import { Tokenizer } from './bpe.js';
import { HfTokenizer } from './hf.js';
import type { TextTokenizer } from './types.js';

export function tokenizerFromJSON(j: unknown): TextTokenizer {
  const type = typeof j === 'object' && j !== null ? (j as { type?: unknown }).type : undefined;
  // anything else gets the BPE's own message (it names the type it expects)
  return type === 'hf-tokenizer' ? HfTokenizer.fromJSON(j) : Tokenizer.fromJSON(j);
}
