/**
 * Mode sft_then_rl (a baseline the paper lacks): SFT for sft_then_rl.sft_steps steps on RL's format
 * with an empty think (`<think></think><answer>LABEL</answer>`), then GRPO from there. The loop's
 * sampler draws RL batches (batch_size / group_size prompts); the SFT phase draws its own batches of
 * batch_size examples from a second seeded sampler, whose position is saved with the rest of the state.
 * With rl.beta > 0 the KL reference is the base model (the init checkpoint), as in mode rl.
 */
import type { TrainConfig } from '../config/schema.js';
import { world } from '../parallel/world.js';
import { STREAMS } from '../util/rng.js';
import type { Runner } from './loop.js';
import { rlRunner } from './rl.js';
import { BatchSampler, type SamplerPosition } from './sampler.js';
import type { Prepared } from './setup.js';
import { sftRunner } from './sft.js';
import type { Trainer } from './trainer.js';
import { parseState, SftThenRlStateSchema } from './trainer_state.js';

export function sftThenRlRunner(cfg: TrainConfig, p: Prepared, trainer: Trainer): Runner {
  const think = [p.tokenizer.id('<think>'), p.tokenizer.id('</think>')];
  const sft = sftRunner(cfg, p, trainer, (label) => [...think, ...p.prompts.answerTarget(label)]);
  const rl = rlRunner(cfg, p, trainer);
  const sftSampler = new BatchSampler(sft.lengths, sft.batchSize, STREAMS.sftPhaseOrder(cfg.seed));
  let sftPos: SamplerPosition = { epoch: 0, batch: 0 };
  let steps = 0;
  return {
    lengths: rl.lengths,
    batchSize: rl.batchSize,
    headline: ['reward/total/mean', 'train/loss_sft'],
    async step(indices, lr) {
      steps++;
      if (steps > cfg.sft_then_rl.sft_steps) return rl.step(indices, lr);
      const { indices: batch, next } = sftSampler.next(sftPos);
      sftPos = next;
      return { ...(await sft.step(world().shard(batch), lr)), examples: batch.length };
    },
    state: () => ({ steps, sft_position: sftPos, sft: sft.state(), rl: rl.state() }),
    restore(raw) {
      const st = parseState(SftThenRlStateSchema, raw);
      ({ steps, sft_position: sftPos } = st);
      sft.restore(st.sft);
      rl.restore(st.rl);
    },
  };
}
