/**
 * A Hugging Face model's tokenizer (its tokenizer.json, through @huggingface/tokenizers, the library
 * transformers.js uses) with gta's structure tags added as new tokens after the model's embedding rows.
 *
 * Text never encodes to a control token: the tags are not in the library's vocabulary at all, and
 * the model's own special tokens (<|endoftext|>, <|im_start|>, ...) are taken out of its added tokens
 * before text is encoded, so a literal "<|im_end|>" in a dataset is encoded as the characters it is
 * (transformers' split_special_tokens). gta places BOS, EOS and the tags by id, as with its own BPE.
 */
import { createHash } from 'node:crypto';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { GtaError } from '../util/errors.js';
import { STRUCTURE_TAGS, type SpecialToken, type TextTokenizer } from './types.js';

type Tag = (typeof STRUCTURE_TAGS)[number];

interface AddedTokenJSON {
  id: number;
  content: string;
  special?: boolean;
}

/** What a gta checkpoint's tokenizer.json holds for a Hugging Face tokenizer. */
export interface HfTokenizerJSON {
  type: 'hf-tokenizer';
  version: 1;
  /** The model folder's tokenizer.json and tokenizer_config.json, unchanged. */
  tokenizer: Record<string, unknown>;
  config: Record<string, unknown>;
  bos: number;
  eos: number;
  pad: number;
  /** The model's embedding rows before the tags were added (ids at or above it are the tags). */
  base_rows: number;
}

export class HfTokenizer implements TextTokenizer {
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
  readonly vocabSize: number;
  private readonly lib: HfLibTokenizer;
  private readonly tagIds = new Map<Tag, number>();
  /** id -> text of the model's own special tokens (decoded as their text, never produced by encode). */
  private readonly specialText = new Map<number, string>();
  /** Ids below base_rows with no token at all (an embedding padded past the vocabulary, as Qwen's). */
  readonly unusedIds: number[] = [];
  /** What decode writes for an id that is not ordinary text: a tag's or special token's text, or nothing. */
  private readonly controlText = new Map<number, string>();
  private fingerprintCache?: string;

  private constructor(private readonly json: HfTokenizerJSON) {
    this.bosId = json.bos;
    this.eosId = json.eos;
    this.padId = json.pad;
    STRUCTURE_TAGS.forEach((t, i) => this.tagIds.set(t, json.base_rows + i));
    this.vocabSize = json.base_rows + STRUCTURE_TAGS.length;
    const added = (json.tokenizer.added_tokens ?? []) as AddedTokenJSON[];
    for (const t of added) if (t.special) this.specialText.set(t.id, t.content);
    // the library matches added tokens in text; only the model's ordinary added tokens stay with it
    this.lib = new HfLibTokenizer({ ...json.tokenizer, added_tokens: added.filter((t) => !t.special) }, json.config);
    const known = new Uint8Array(json.base_rows);
    for (const id of this.lib.get_vocab(true).values()) if (id < json.base_rows) known[id] = 1;
    for (const id of this.specialText.keys()) if (id < json.base_rows) known[id] = 1;
    known.forEach((k, id) => {
      if (!k) this.unusedIds.push(id);
    });
    for (const id of this.unusedIds) this.controlText.set(id, '');
    for (const [id, text] of this.specialText) this.controlText.set(id, text);
    for (const [tag, id] of this.tagIds) this.controlText.set(id, tag);
    // as gta's own BPE: padding decodes to nothing (unless it is also EOS or BOS, as GPT-2's)
    if (this.padId !== this.eosId && this.padId !== this.bosId) this.controlText.set(this.padId, '');
    for (const [name, id] of [['bos', json.bos], ['eos', json.eos], ['pad', json.pad]] as const) {
      if (!(Number.isInteger(id) && id >= 0 && id < json.base_rows)) throw new GtaError(`tokenizer: ${name} id ${id} is not a token of the model (0..${json.base_rows - 1})`);
    }
  }

  /** From a model folder's files: its tokenizer.json (parsed) and tokenizer_config.json ({} when it has none). */
  static create(tokenizer: Record<string, unknown>, config: Record<string, unknown>, ids: { bos: number; eos: number; pad: number }, baseRows: number): HfTokenizer {
    return new HfTokenizer({ type: 'hf-tokenizer', version: 1, tokenizer, config, ...ids, base_rows: baseRows });
  }

  static fromJSON(j: unknown): HfTokenizer {
    const o = j as Partial<HfTokenizerJSON>;
    if (o.version !== 1) throw new GtaError(`tokenizer: unsupported hf-tokenizer version ${JSON.stringify(o.version)} (expected 1)`);
    for (const k of ['bos', 'eos', 'pad', 'base_rows'] as const) if (!Number.isInteger(o[k])) throw new GtaError(`tokenizer: ${k} must be an integer`);
    if (typeof o.tokenizer !== 'object' || o.tokenizer === null) throw new GtaError('tokenizer: tokenizer must be the model folder\'s tokenizer.json');
    return new HfTokenizer({ type: 'hf-tokenizer', version: 1, tokenizer: o.tokenizer, config: o.config ?? {}, bos: o.bos!, eos: o.eos!, pad: o.pad!, base_rows: o.base_rows! });
  }

  id(special: SpecialToken): number {
    if (special === '<pad>') return this.padId;
    if (special === '<bos>') return this.bosId;
    if (special === '<eos>') return this.eosId;
    const id = this.tagIds.get(special);
    if (id === undefined) throw new Error(`unknown special token ${JSON.stringify(special)}`);
    return id;
  }

  encode(text: string): number[] {
    if (text.length === 0) return [];
    return this.lib.encode(text, { add_special_tokens: false }).ids;
  }

  /**
   * Text whose model special tokens (`<|im_start|>`, `<|eot_id|>`...) are those tokens: a chat template's
   * rendering, never a dataset's text (encode() keeps those characters as characters).
   */
  encodeWithSpecials(text: string): number[] {
    const specials = [...this.specialText].filter(([, t]) => t.length > 0).sort((a, b) => b[1].length - a[1].length);
    if (specials.length === 0) return this.encode(text);
    const byText = new Map(specials.map(([id, t]) => [t, id]));
    const split = new RegExp(`(${specials.map(([, t]) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`);
    return text.split(split).flatMap((piece, i) => (i % 2 === 1 ? [byText.get(piece)!] : this.encode(piece)));
  }

  /** The chat template of tokenizer_config.json (or chat_template.jinja), and the special tokens' text it may name. */
  chatTemplate(): { template: string; tokens: Record<string, string> } | undefined {
    let t = this.json.config.chat_template;
    // a list of named templates (as some models ship): the default one
    if (Array.isArray(t)) t = (t as { name?: string; template?: string }[]).find((x) => x.name === 'default')?.template;
    if (typeof t !== 'string') return undefined;
    const tokens: Record<string, string> = {};
    for (const [key, id] of [['bos_token', this.bosId], ['eos_token', this.eosId], ['pad_token', this.padId]] as const) tokens[key] = this.specialText.get(id) ?? this.decode([id]);
    return { template: t, tokens };
  }

  /** Tags and the model's special tokens as their text, padding and unused ids as nothing, runs of other ids through the library's decoder. */
  decode(ids: number[]): string {
    let out = '';
    let run: number[] = [];
    const flush = () => {
      if (run.length > 0) out += this.lib.decode(run, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
      run = [];
    };
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`tokenizer: id ${id} out of range [0, ${this.vocabSize})`);
      const control = this.controlText.get(id);
      if (control === undefined) run.push(id);
      else {
        flush();
        out += control;
      }
    }
    flush();
    return out;
  }

  specialIds(): number[] {
    return [...new Set([this.padId, this.bosId, this.eosId, ...this.controlText.keys()])].sort((a, b) => a - b);
  }

  toJSON(): HfTokenizerJSON {
    return this.json;
  }

  fingerprint(): string {
    this.fingerprintCache ??= createHash('sha256').update(JSON.stringify(this.json)).digest('hex').slice(0, 16);
    return this.fingerprintCache;
  }
}
