/**
 * Prompts and targets as token ids. Structure tags are special tokens added by id, never parsed from
 * text, so a dataset whose text happens to contain "<answer>" cannot inject one.
 */
import type { TextTokenizer } from '../tokenizer/types.js';
import { chatPieces } from './chat.js';

export interface PromptBuilder {
  /** BOS, the template's text before {text}, the (truncated) example text, the text after {text} (prompt.chat: the chat template's rendering around it). */
  prompt(text: string): number[];
  /** `<answer>LABEL</answer>` then EOS: what SFT trains and eval expects. */
  answerTarget(label: string): number[];
}

/** With `chat`, the model's chat template around the prompt template (chat.ts); its rendering starts the prompt (it has its BOS when the model wants one). */
export function promptBuilder(tok: TextTokenizer, template: string, maxTextTokens: number, chat = false): PromptBuilder {
  const at = template.indexOf('{text}');
  const { before, after } = chat
    ? chatPieces(tok, template)
    : { before: [tok.bosId, ...(at > 0 ? tok.encode(template.slice(0, at)) : [])], after: tok.encode(template.slice(at + '{text}'.length)) };
  return {
    prompt(text: string): number[] {
      return [...before, ...tok.encode(text).slice(0, maxTextTokens), ...after];
    },
    answerTarget(label: string): number[] {
      return [tok.id('<answer>'), ...tok.encode(label), tok.id('</answer>'), tok.eosId];
    },
  };
}

/**
 * The label inside the first <answer>...</answer> of generated ids, or null when there is none or it
 * is not one of the labels (an invalid output: scored as wrong and counted).
 */
export function parseAnswer(tok: TextTokenizer, ids: number[], labels: string[]): number | null {
  const open = ids.indexOf(tok.id('<answer>'));
  if (open < 0) return null;
  const close = ids.indexOf(tok.id('</answer>'), open + 1);
  if (close < 0) return null;
  const text = tok.decode(ids.slice(open + 1, close));
  const i = labels.indexOf(text);
  return i >= 0 ? i : null;
}
