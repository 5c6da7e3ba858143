/**
 * The training modes and what each one's completions look like: the one table that the config
 * schema, the context check, evaluation and the runners read (src/train/modes.ts maps each mode to
 * its runner; both are keyed by Mode, so the compiler rejects a mode that is missing from either).
 * It lives here, below everything else, so that validating a config loads no training code.
 */

export const MODES = ['sft', 'rl', 'gta', 'sft_then_rl'] as const;
export type Mode = (typeof MODES)[number];

/**
 * answer: `<answer>LABEL</answer><eos>`, decoded greedily over the whole vocabulary until EOS;
 * rl:     `<think>...</think><answer>LABEL</answer><eos>`, decoded as rl.decoding says;
 * gta:    `<guess>LABEL</guess><think>...</think><answer>LABEL</answer><eos>`, likewise.
 */
export type Completion = 'answer' | 'rl' | 'gta';

export interface ModeTraits {
  /** The completion format the mode trains and its evaluation decodes. */
  completion: Completion;
  /** Sampled in groups of rl.group_size completions per prompt (train.batch_size counts completions). */
  grouped: boolean;
  /**
   * Whether train.dropout applies (default 0.1) or must be 0: RL passes run the model as it samples, so
   * a mode made of them alone trains without dropout (as TRL's GRPO does).
   */
  dropout: boolean;
}

export const MODE_TRAITS: { readonly [M in Mode]: ModeTraits } = {
  sft: { completion: 'answer', grouped: false, dropout: true },
  rl: { completion: 'rl', grouped: true, dropout: false },
  gta: { completion: 'gta', grouped: true, dropout: false },
  // trained on rl's format with an empty think, then by GRPO: evaluated as rl (its SFT phase takes dropout)
  sft_then_rl: { completion: 'rl', grouped: true, dropout: true },
};
