/**
 * Mode gta (Guess-Think-Answer, arXiv 2509.12108): completions `<guess>LABEL</guess><think>...</think>
 * <answer>LABEL</answer>` sampled and scored as in rl.ts, with the guess span masked out of the RL loss
 * (rl_tokens.ts). The guess is trained instead by cross-entropy on the gold label of a teacher-forced
 * `prompt <guess>GOLD` (guessExample), and the step's gradient combines the two under gta.gradient_constraint:
 * L = lambda_sft * L_SFT + lambda_rl * L_RL.
 */
import type { TrainConfig } from '../config/schema.js';
import { world } from '../parallel/world.js';
import { Clock } from '../util/clock.js';
import type { RngState } from '../util/rng.js';
import type { AdamW } from './adamw.js';
import { combineGradients, disposeUnused } from './grad_constraint.js';
import type { Runner, StepOutput } from './loop.js';
import type { Decoding } from '../task/structure.js';
import { policyUpdate, rlSetup, rollout, type RlExample } from './rl.js';
import type { Prepared } from './setup.js';
import { sftGrads, type SftExample } from './sft.js';

/**
 * The teacher-forced example of L_SFT: `prompt <guess>` then the gold label in structured decoding,
 * where the decoder forces both tags; in free decoding the model must write the tags itself, so
 * they are targets too (`prompt` then `<guess> GOLD </guess>`).
 */
export function guessExample(e: RlExample, decoding: Decoding, tags: { open: number; close: number }): SftExample {
  return decoding === 'structured' ? { prompt: [...e.prompt, tags.open], target: e.goldTokens } : { prompt: e.prompt, target: [tags.open, ...e.goldTokens, tags.close] };
}

export function gtaRunner(cfg: TrainConfig, p: Prepared, optimizer: AdamW): Runner {
  const s = rlSetup(cfg, p, optimizer, 'gta');
  const tags = { open: p.tokenizer.id('<guess>'), close: p.tokenizer.id('</guess>') };
  let conflicts = 0;
  let steps = 0;
  return {
    lengths: s.lengths,
    batchSize: s.batchSize,
    headline: ['reward/total/mean'],
    async step(indices, lr): Promise<StepOutput> {
      const batch = indices.map((i) => s.train[i]);
      const guess = batch.map((e) => guessExample(e, cfg.rl.decoding, tags));
      const r = rollout(s.ctx, batch);
      let conflict = false;
      const u = await policyUpdate(s.ctx, r, lr, async (gRl) => {
        const clock = new Clock();
        const local = sftGrads(p.model, guess, p.tokenizer.padId, {}, cfg.train.grad_accum_steps);
        // the constraint compares the whole batch's g_sft and g_rl: both are means over every rank
        const g = await world().meanGrads(local.grads, local.targets, { loss: [local.loss, local.targets] });
        const ceSeconds = clock.lap();
        const c = combineGradients(g.grads, gRl, { lambdaSft: cfg.gta.lambda_sft, lambdaRl: cfg.gta.lambda_rl, rule: cfg.gta.gradient_constraint });
        disposeUnused(g.grads, c.grads);
        conflict = c.conflict;
        const metrics = { 'train/loss_sft': g.scalars.loss, 'grad/cos_sft_rl': c.cosine, 'grad/conflict': c.conflict ? 1 : 0, 'perf/guess_ce_s': ceSeconds, 'perf/combine_s': clock.lap() };
        return { grads: c.grads, metrics };
      });
      steps++;
      if (conflict) conflicts++;
      const metrics = { ...r.metrics, ...u.metrics, 'perf/rollout_tokens': r.rolloutTokens, 'grad/conflict_rate': conflicts / steps };
      return { metrics, tokens: u.tokens, samples: s.samples(indices, r), pool: r.pool };
    },
    state: () => ({ sampling_rng: s.rngState(), conflicts, steps }),
    restore(st) {
      s.restoreRng(st.sampling_rng as RngState);
      conflicts = st.conflicts as number;
      steps = st.steps as number;
    },
  };
}
