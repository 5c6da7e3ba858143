/**
 * Mode gta (Guess-Think-Answer, arXiv 2509.12108): completions `<guess>LABEL</guess><think>...</think>
 * <answer>LABEL</answer>` sampled and scored as in rl.ts, with the guess span masked out of the RL loss
 * (rl_tokens.ts). The guess is trained instead by cross-entropy on the gold label of a teacher-forced
 * `prompt <guess>GOLD` (guessExample), and each update steps along
 *   L = lambda_sft * L_SFT + lambda_rl * L_RL
 * with the two gradients combined under gta.gradient_constraint (grad_constraint.ts).
 */
import type { TrainConfig } from '../config/schema.js';
import { smallWork } from '../backend/select.js';
import { Clock } from '../util/clock.js';
import type { RngState } from '../util/rng.js';
import { combineGradients, disposeUnused } from './grad_constraint.js';
import type { Runner, StepOutput } from './loop.js';
import type { Decoding } from '../task/structure.js';
import { meanOf, PolicyGradients, rlSetup, rollout, rolloutSequenceTokens, type RlExample } from './rl.js';
import type { Prepared } from './setup.js';
import { meanSftGrads, type SftExample } from './sft.js';
import type { Trainer } from './trainer.js';
import { GtaStateSchema, parseState, type GtaState } from './trainer_state.js';

/**
 * The teacher-forced example of L_SFT: `prompt <guess>` then the gold label in structured decoding,
 * where the decoder forces both tags; in free decoding the model must write the tags itself, so
 * they are targets too (`prompt` then `<guess> GOLD </guess>`).
 */
export function guessExample(e: RlExample, decoding: Decoding, tags: { open: number; close: number }): SftExample {
  return decoding === 'structured' ? { prompt: [...e.prompt, tags.open], target: e.goldTokens } : { prompt: e.prompt, target: [tags.open, ...e.goldTokens, tags.close] };
}

export function gtaRunner(cfg: TrainConfig, p: Prepared, trainer: Trainer): Runner {
  const s = rlSetup(cfg, p, 'gta');
  const tags = { open: p.tokenizer.id('<guess>'), close: p.tokenizer.id('</guess>') };
  const { lambda_sft: lambdaSft, lambda_rl: lambdaRl, gradient_constraint: rule } = cfg.gta;
  const guessByRl = cfg.gta.guess_loss === 'rl';
  let conflicts = 0;
  let steps = 0;

  return {
    lengths: s.lengths,
    batchSize: s.batchSize,
    headline: ['reward/total/mean'],
    async step(indices, lr): Promise<StepOutput> {
      const batch = indices.map((i) => s.train[i]);
      const guess = batch.map((e) => guessExample(e, cfg.rl.decoding, tags));
      // the rollout: G completions a prompt, scored and normalised within each group
      const r = rollout(s.ctx, batch);
      let conflict = false;
      const update = await smallWork(async () => {
        const rl = await PolicyGradients.start(s.ctx, r);
        const iterations: Record<string, number>[] = [];
        const times = { 'perf/guess_ce_s': 0, 'perf/combine_s': 0, 'perf/optimizer_s': 0 };
        try {
          for (let it = 0; rl.active && it < cfg.rl.num_iterations; it++) {
            // the RL gradients (think and answer), then the guess's (the constraint compares both as means over every rank)
            const gRl = await rl.next();
            const clock = new Clock();
            if (guessByRl) {
              // GTA(RL): the guess's tokens were in L_RL; no L_SFT, nothing to constrain
              const gradNorm = trainer.applyStep(gRl.grads, { 'train/loss_rl': gRl.loss }, lr);
              times['perf/optimizer_s'] += clock.lap();
              iterations.push({ 'train/loss_rl': gRl.loss, ...gRl.metrics, 'train/grad_norm': gradNorm });
              continue;
            }
            const gSft = await meanSftGrads(p.model, guess, p.tokenizer.padId, {}, cfg.train.grad_accum_steps);
            times['perf/guess_ce_s'] += clock.lap();
            // the constraint, then the step
            const c = combineGradients(gSft.grads, gRl.grads, { lambdaSft, lambdaRl, rule });
            disposeUnused(gSft.grads, c.grads);
            disposeUnused(gRl.grads, c.grads);
            conflict = c.conflict;
            times['perf/combine_s'] += clock.lap();
            const gradNorm = trainer.applyStep(c.grads, { 'train/loss_rl': gRl.loss, 'train/loss_sft': gSft.loss }, lr);
            times['perf/optimizer_s'] += clock.lap();
            iterations.push({ 'train/loss_rl': gRl.loss, ...gRl.metrics, 'train/grad_norm': gradNorm, 'train/loss_sft': gSft.loss, 'grad/cos_sft_rl': c.cosine, 'grad/conflict': c.conflict ? 1 : 0 });
          }
        } finally {
          rl.dispose();
        }
        return rl.active ? { ...meanOf(iterations), ...rl.times, ...times } : {};
      });
      steps++;
      if (conflict) conflicts++;
      const metrics = { ...r.metrics, ...update, 'perf/rollout_tokens': r.rolloutTokens, 'grad/conflict_rate': conflicts / steps };
      return { metrics, tokens: rolloutSequenceTokens(r), samples: s.samples(indices, r), pool: r.pool };
    },
    state: (): GtaState => ({ sampling_rng: s.rngState(), conflicts, steps }),
    restore(raw) {
      const st = parseState(GtaStateSchema, raw);
      s.restoreRng(st.sampling_rng);
      ({ conflicts, steps } = st);
    },
  };
}
