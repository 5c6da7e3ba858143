/**
 * `prompt.chat: true`: the prompt as an instruct model was trained to see it, the tokenizer's
 * chat_template rendered by @huggingface/jinja (transformers.js's renderer) for one user message, the
 * prompt template with the example's text, and the assistant's turn opened (add_generation_prompt).
 * The template's special tokens (`<|im_start|>`, `<|eot_id|>`...) become those tokens; the user's
 * text stays characters, as everywhere in gta.
 */
import { Template } from '@huggingface/jinja';
import { HfTokenizer } from '../tokenizer/hf.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { GtaError } from '../util/errors.js';

/** Stands for the example's text while the template renders: private-use characters no template touches. */
const TEXT = '\uE000gta-text\uE001';

/** The rendered prompt's tokens before and after the example's text. */
export function chatPieces(tok: TextTokenizer, template: string): { before: number[]; after: number[] } {
  const chat = tok instanceof HfTokenizer ? tok.chatTemplate() : undefined;
  if (!(tok instanceof HfTokenizer) || chat === undefined) {
    throw new GtaError(`prompt.chat: the model's tokenizer has no chat_template (${tok instanceof HfTokenizer ? "tokenizer_config.json's chat_template or chat_template.jinja" : "gta's own models have none; it is for Hugging Face instruct models"}); set prompt.chat: false`);
  }
  let rendered: string;
  try {
    const content = template.replace('{text}', TEXT);
    rendered = new Template(chat.template).render({ messages: [{ role: 'user', content }], add_generation_prompt: true, ...chat.tokens });
  } catch (e) {
    throw new GtaError(`prompt.chat: the model's chat_template does not render (${(e as Error).message.split('\n')[0]})`);
  }
  const at = rendered.indexOf(TEXT);
  if (at < 0 || rendered.indexOf(TEXT, at + 1) >= 0) throw new GtaError(`prompt.chat: the model's chat_template ${at < 0 ? 'drops' : 'repeats'} the user's message; gta needs it once`);
  return { before: tok.encodeWithSpecials(rendered.slice(0, at)), after: tok.encodeWithSpecials(rendered.slice(at + TEXT.length)) };
}
