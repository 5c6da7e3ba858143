/**
 * What the pipeline needs of a tokenizer, whichever it is: gta's own byte-level BPE (bpe.ts) or a
 * Hugging Face model's tokenizer.json (hf.ts). Special ids are only ever placed by code (`id()`,
 * bosId, eosId); encoding text never produces one, so data cannot inject control tokens.
 */

/** The special tokens gta's code places by id; the structure tags are the completion formats' (src/task/structure.ts). */
export const SPECIAL_TOKENS = ['<pad>', '<bos>', '<eos>', '<guess>', '</guess>', '<think>', '</think>', '<answer>', '</answer>'] as const;
export type SpecialToken = (typeof SPECIAL_TOKENS)[number];

/** The tags of the completion formats: a Hugging Face tokenizer gets them as new tokens. */
export const STRUCTURE_TAGS = ['<guess>', '</guess>', '<think>', '</think>', '<answer>', '</answer>'] as const satisfies readonly SpecialToken[];

export interface TextTokenizer {
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** Rows of the model's embedding: every id the model can see or produce. */
  readonly vocabSize: number;
  id(special: SpecialToken): number;
  /** Token ids for `text` (no BOS/EOS added). */
  encode(text: string): number[];
  decode(ids: number[]): string;
  /** Every id that text never encodes to (specials, and a Hugging Face model's unused ids): free text excludes them. */
  specialIds(): number[];
  /** What a checkpoint's tokenizer.json holds. */
  toJSON(): unknown;
  /** Short hash of toJSON(), stored with checkpoints to detect a tokenizer mismatch. */
  fingerprint(): string;
}
