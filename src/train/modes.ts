/**
 * Each mode's runner (what one training step is). The traits of a mode (its completion format and
 * decoding) are in src/config/modes.ts; adding a mode is an entry there and here, its runner file,
 * and its config section.
 */
import type { Mode } from '../config/modes.js';
import type { TrainConfig } from '../config/schema.js';
import { gtaRunner } from './gta.js';
import type { Runner } from './loop.js';
import { rlRunner } from './rl.js';
import type { Prepared } from './setup.js';
import { sftRunner } from './sft.js';
import { sftThenRlRunner } from './sft_then_rl.js';
import type { Trainer } from './trainer.js';

const RUNNERS: { readonly [M in Mode]: (cfg: TrainConfig, p: Prepared, trainer: Trainer) => Runner } = {
  sft: (cfg, p, t) => sftRunner(cfg, p, t),
  rl: rlRunner,
  gta: gtaRunner,
  sft_then_rl: sftThenRlRunner,
};

export function modeRunner(cfg: TrainConfig, p: Prepared, trainer: Trainer): Runner {
  return RUNNERS[cfg.mode](cfg, p, trainer);
}
