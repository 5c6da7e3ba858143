/**
 * The one training loop, shared by every fine-tuning mode and by pretraining: batches from the seeded
 * sampler, a warmup/decay learning rate, the non-finite policy, periodic evaluation and checkpoints,
 * metrics.jsonl lines as they happen, progress, and exact resume. With several ranks (src/parallel)
 * every rank runs this loop on its shard of each batch; rank 0 alone evaluates and writes the run.
 * What one step does is the runner's business (sft.ts, rl.ts, gta.ts, sft_then_rl.ts, pretrain.ts); what an evaluation measures is the
 * evaluator's.
 */
import path from 'node:path';
import type { OptimConfig } from '../config/schema.js';
import { loadCheckpoint, loadTrainingState, saveCheckpoint } from '../model/checkpoint.js';
import type { Transformer } from '../model/transformer.js';
import type { CheckpointName, RunDir } from '../run/run_dir.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { world } from '../parallel/world.js';
import { GtaError } from '../util/errors.js';
import { mean, stdUnbiased } from '../util/stats.js';
import type { Logger } from '../util/log.js';
import { startProgress } from '../util/progress.js';
import { AdamW, NonFiniteError } from './adamw.js';
import { BatchSampler, type SamplerPosition } from './sampler.js';
import { learningRate } from './schedule.js';
import { LoopStateSchema, parseState, type LoopState } from './trainer_state.js';

export interface StepOutput {
  /** Numeric metrics of this step, averaged over the log window by the loop. */
  metrics: Record<string, number>;
  /** Tokens processed (prompt + completion) in this step. */
  tokens: number;
  /** A few completions to keep in samples.jsonl (RL and GTA). */
  samples?: Record<string, unknown>[];
  /** Training items this step consumed, when not the batch it was given (sft_then_rl's SFT phase draws its own). */
  examples?: number;
  /** Per-item values behind `<key>/mean` and `<key>/std` metrics: with several ranks, rank 0 recomputes both over every rank's items. */
  pool?: Record<string, number[]>;
}

/** What one training step is in a mode. */
export interface Runner {
  /** Length of each training item, for length-bucketed batches. */
  lengths: number[];
  /** Items per batch (prompts, for RL and GTA: batch_size / group_size). */
  batchSize: number;
  /** The metrics the progress bar shows, first one present in the log window wins. */
  headline: string[];
  /** One step on this rank's share of the batch (all of it in a single process). */
  step(indices: number[], lr: number): StepOutput | Promise<StepOutput>;
  /** What a resumed run needs (RNG states, counters); saved in the checkpoint's trainer state (its type: src/train/trainer_state.ts). */
  state(): unknown;
  /** Restores a saved state(), checking it with the runner's schema (parseState). */
  restore(state: unknown): void;
}

export interface EvalOutcome {
  /** The eval line's metrics in metrics.jsonl. */
  record: Record<string, number>;
  /** What summary.json keeps of the final evaluation. */
  summary: Record<string, unknown>;
  /** Ranks periodic evaluations for checkpoints/best (higher is better), and what summary.json keeps of the best. */
  rank?: { score: number; keep: Record<string, number> };
  /** The final evaluation's score on a second split too (eval.test_at_end): its metrics line and summary. */
  also?: { split: string; record: Record<string, number>; summary: Record<string, unknown> };
}

export interface Evaluator {
  /** The split named in eval lines. */
  split: string;
  /** During training (usually a fixed subset). */
  periodic(step: number): EvalOutcome;
  /** After the last step, on the whole split: of `weights` (the best checkpoint's, eval.final_checkpoint best) when given. */
  final(step: number, weights?: { model: Transformer; step: number; checkpoint: CheckpointName }): EvalOutcome;
}

export interface LoopConfig {
  seed: number;
  /** Total optimizer steps; if absent, epochs decides. */
  steps?: number;
  epochs?: number;
  log_every: number;
  eval_every: number;
  checkpoint_every: number;
  /** Which checkpoints to write (default both). */
  keep_checkpoints?: readonly CheckpointName[];
  on_nonfinite: 'skip' | 'stop';
  optim: OptimConfig;
  /** Stop after `patience` periodic evals in a row without beating the best score by more than `min_delta`. */
  early_stopping?: { patience: number; min_delta: number };
  /** The weights the final evaluation scores (default latest). */
  final_checkpoint?: CheckpointName;
}

export interface LoopInput {
  cfg: LoopConfig;
  runner: Runner;
  model: Transformer;
  tokenizer: TextTokenizer;
  optimizer: AdamW;
  evaluator: Evaluator;
  run: RunDir;
  log: Logger;
  shouldStop: () => boolean;
  /** The progress bar's label. */
  label: string;
  /** A training checkpoint folder to continue from (--resume). */
  resumeFrom?: string;
}

export interface LoopResult {
  status: 'finished' | 'interrupted';
  steps: number;
  /** Epochs done (steps / batches per epoch). */
  epochs: number;
  wall_time_s: number;
  train_tokens: number;
  /** The final evaluation (finished runs only). */
  final?: EvalOutcome;
  /** The best evaluation, periodic or final, when the evaluator ranks them. */
  best?: { step: number } & Record<string, number>;
  /** train.early_stopping ended the run: at which step, and the best eval's step. */
  stopped_early?: { step: number; best_step: number; patience: number; min_delta: number };
}

export async function trainLoop(x: LoopInput): Promise<LoopResult> {
  const { cfg, runner, model, tokenizer, optimizer, evaluator, run, log } = x;
  const w = world();
  if (runner.batchSize % w.size !== 0) throw new GtaError(`train.batch_size: ${runner.batchSize} examples (prompts in RL and GTA) a step do not split over ${w.size} ranks; make it a multiple of ${w.size} (of ${w.size} x rl.group_size in RL and GTA)`);
  let S: LoopState = { step: 0, position: { epoch: 0, batch: 0 }, best: null, tokens_seen: 0, examples_seen: 0, window: { sums: {}, steps: 0, tokens: 0 }, elapsed_s: 0, last_samples: [], runner: {} };
  if (x.resumeFrom) {
    const saved = loadTrainingState(x.resumeFrom);
    optimizer.load(saved.optimizer, saved.optimizerFile);
    const file = path.join(x.resumeFrom, 'trainer_state.json');
    const named = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        throw e instanceof GtaError ? new GtaError(`${file}: ${e.message}`) : e;
      }
    };
    S = named(() => parseState(LoopStateSchema, saved.trainer));
    const savedSize = S.world_size ?? 1;
    if (savedSize !== w.size) throw new GtaError(`${x.resumeFrom}: saved by ${savedSize} rank${savedSize === 1 ? '' : 's'}; resume it with --nproc ${savedSize} (each rank's random streams are its own)`);
    const st = S.ranks?.[w.rank] ?? S.runner;
    named(() => runner.restore(st));
    log.info({ step: S.step, checkpoint: x.resumeFrom }, 'resuming');
  }
  const t0 = performance.now() - S.elapsed_s * 1000;
  const elapsed = () => (performance.now() - t0) / 1000;
  const sampler = new BatchSampler(runner.lengths, runner.batchSize, cfg.seed);
  const totalSteps = cfg.steps ?? Math.max(1, Math.round((cfg.epochs ?? 1) * sampler.batchesPerEpoch));
  // an epoch's one short batch (the remainder) must split too: say so now, not when it comes up mid-run
  const remainder = runner.lengths.length % runner.batchSize;
  if (remainder % w.size !== 0) throw new GtaError(`the training split's ${runner.lengths.length} items leave one batch of ${remainder} an epoch, which does not split over ${w.size} ranks; set data.max_train_examples so that the remainder divides by ${w.size}`);

  let pos = S.position;
  let best = S.best;
  let evalsSinceBest = S.evals_since_best ?? 0;
  let stoppedEarly = false;
  let tokensSeen = S.tokens_seen;
  // checkpoints from before this counter existed resume at what their step implies
  let examplesSeen = S.examples_seen ?? 0;
  let window = { ...S.window, start: performance.now() };
  let step = S.step;
  let interrupted = false;
  let lastSamples = S.last_samples;
  const epochNow = () => pos.epoch + pos.batch / sampler.batchesPerEpoch;
  // the same start everywhere: rank 0's weights
  await w.broadcastParams(model.params);
  /** Every rank's runner state, on rank 0: what a checkpoint needs to resume each rank exactly. */
  const rankStates = () => w.gather(runner.state());
  const keep = cfg.keep_checkpoints ?? ['latest', 'best'];
  const save = (name: CheckpointName, ranks: unknown[]) => {
    if (!w.lead || !keep.includes(name)) return;
    const state: LoopState = {
      step,
      position: pos,
      best,
      evals_since_best: evalsSinceBest,
      tokens_seen: tokensSeen,
      examples_seen: examplesSeen,
      window: { sums: window.sums, steps: window.steps, tokens: window.tokens },
      elapsed_s: elapsed(),
      last_samples: lastSamples,
      runner: ranks[0],
      ...(w.size > 1 ? { world_size: w.size, ranks } : {}),
    };
    // best is for scoring, not resuming: its weights alone (4 bytes a parameter, not 12)
    saveCheckpoint(run.checkpoint(name), model, tokenizer, { kind: 'training', step, ...(name === 'latest' ? { optimizer: optimizer.state(), trainerState: state } : {}) });
  };
  // every eval line carries the budget spent so far on each axis: steps, epochs, seconds, examples, tokens
  const evalLine = (record: Record<string, number>, split = evaluator.split) => ({ step, epoch: round(epochNow()), time_s: round(elapsed()), split, examples_seen: examplesSeen, tokens_seen: tokensSeen, ...record });

  log.info({ steps: totalSteps, batches_per_epoch: sampler.batchesPerEpoch, train_examples: runner.lengths.length }, 'training');
  const bar = startProgress(x.label, totalSteps, log);
  bar.update(step);
  while (step < totalSteps) {
    // Let signal handlers run between steps (a single process's step runs without yielding).
    await new Promise((r) => setImmediate(r));
    if (await w.any(x.shouldStop())) {
      interrupted = true;
      break;
    }
    const { indices, next } = sampler.next(pos);
    const lr = learningRate(step, totalSteps, cfg.optim);
    let r: StepOutput;
    try {
      r = await runner.step(w.shard(indices), lr);
    } catch (e) {
      // The optimizer refuses non-finite numbers before touching the weights, so no checkpoint is poisoned.
      if (!(e instanceof NonFiniteError)) throw e;
      if (cfg.on_nonfinite === 'stop') throw new GtaError(`${e.message} at step ${step + 1}; the step was not applied (train.on_nonfinite: skip would skip such steps)`, 1);
      log.warn(`${e.message} at step ${step + 1}: step skipped`);
      r = { metrics: { 'train/nonfinite_skipped': 1 }, tokens: 0 };
    }
    r = merged(r, await w.gather({ metrics: r.metrics, tokens: r.tokens, pool: r.pool ?? {} }));
    for (const [k, v] of Object.entries(r.metrics)) window.sums[k] = (window.sums[k] ?? 0) + (Number.isFinite(v) ? v : 0);
    pos = next;
    step += 1;
    tokensSeen += r.tokens;
    examplesSeen += r.examples ?? indices.length;
    window.steps += 1;
    window.tokens += r.tokens;
    lastSamples = r.samples ?? lastSamples;
    if (step % cfg.log_every === 0 || step === totalSteps) {
      const secs = (performance.now() - window.start) / 1000;
      const rec: Record<string, number | string> = { step, epoch: round(epochNow()), time_s: round(elapsed()), split: 'train' };
      for (const [k, v] of Object.entries(window.sums)) rec[k] = v / window.steps;
      Object.assign(rec, { 'train/lr': lr, 'perf/tokens_per_s': window.tokens / secs, 'perf/tokens_seen': tokensSeen, 'train/examples_seen': examplesSeen });
      run.appendJsonl('metrics.jsonl', rec);
      const key = runner.headline.find((k) => k in rec) ?? runner.headline[0];
      bar.update(step, { [key.split('/').slice(-2).join('/')]: Number(rec[key] ?? NaN), 'tok/s': Math.round(Number(rec['perf/tokens_per_s'])) });
      window = { sums: {}, steps: 0, tokens: 0, start: performance.now() };
    }
    const evalNow = step % cfg.eval_every === 0 && step < totalSteps;
    const checkpointNow = step % cfg.checkpoint_every === 0 && step < totalSteps;
    // rank 0 evaluates alone; the others hand over their state (for a best checkpoint) and go on
    const states = evalNow || checkpointNow ? await rankStates() : [];
    if (evalNow && w.lead) {
      const res = evaluator.periodic(step);
      run.appendJsonl('metrics.jsonl', evalLine(res.record));
      for (const sample of lastSamples) run.appendJsonl('samples.jsonl', { step, ...sample });
      log.info({ step, ...(res.rank?.keep ?? res.record) }, 'eval');
      const es = cfg.early_stopping;
      if (es && res.rank) evalsSinceBest = !best || res.rank.score > best.score + es.min_delta ? 0 : evalsSinceBest + 1;
      if (res.rank && (!best || res.rank.score > best.score)) {
        best = { step, ...res.rank };
        save('best', states);
      }
    }
    // rank 0's verdict, on every rank
    if (evalNow && cfg.early_stopping && (await w.any(w.lead && evalsSinceBest >= cfg.early_stopping.patience))) {
      stoppedEarly = true;
      log.info({ step, best_step: best?.step, patience: cfg.early_stopping.patience }, `early stopping: ${cfg.early_stopping.patience} evals without beating the best by more than ${cfg.early_stopping.min_delta}`);
      break;
    }
    if (checkpointNow) save('latest', states);
  }
  bar.stop();
  const states = await rankStates();
  save('latest', states);
  const result: LoopResult = { status: 'interrupted', steps: step, epochs: round(step / sampler.batchesPerEpoch), wall_time_s: elapsed(), train_tokens: tokensSeen };
  if (interrupted) return result;
  if (!w.lead) return { ...result, status: 'finished' };
  const stopped = stoppedEarly && cfg.early_stopping ? { stopped_early: { step, best_step: best?.step ?? step, ...cfg.early_stopping } } : {};
  const final = finalEval(evaluator, step, cfg.final_checkpoint === 'best' && best && best.step !== step && keep.includes('best') ? run.checkpoint('best') : undefined, log);
  run.appendJsonl('metrics.jsonl', evalLine(final.record));
  if (final.also) run.appendJsonl('metrics.jsonl', evalLine(final.also.record, final.also.split));
  // The final weights count as a candidate for best when no periodic eval ranked any (those used a subset).
  if (!best && final.rank) {
    best = { step, ...final.rank };
    save('best', states);
  }
  return { ...result, status: 'finished', wall_time_s: round(elapsed()), final, ...(best ? { best: { step: best.step, ...best.keep } } : {}), ...stopped };
}

/** The final evaluation: of the last weights, or of the best checkpoint's (loaded beside them, freed after). */
function finalEval(evaluator: Evaluator, step: number, bestDir: string | undefined, log: Logger): EvalOutcome {
  if (!bestDir) return evaluator.final(step);
  const { model, meta } = loadCheckpoint(bestDir);
  log.info({ checkpoint: bestDir, step: meta.step }, 'final eval of the best checkpoint');
  try {
    return evaluator.final(step, { model, step: meta.step, checkpoint: 'best' });
  } finally {
    model.dispose();
  }
}

/**
 * A step's metrics as rank 0 logs them: each the mean over the ranks that have it (the ranks' shards
 * are equal, and losses come already reduced), pooled means and standard deviations recomputed over
 * every rank's items, tokens summed; rank 0's samples.
 */
function merged(r: StepOutput, ranks: { metrics: Record<string, number>; tokens: number; pool: Record<string, number[]> }[]): StepOutput {
  if (ranks.length === 1) return r;
  const metrics: Record<string, number> = {};
  for (const k of new Set(ranks.flatMap((x) => Object.keys(x.metrics)))) {
    metrics[k] = mean(ranks.map((x) => x.metrics[k]).filter((v) => v !== undefined));
  }
  for (const k of Object.keys(ranks[0].pool)) {
    const all = ranks.flatMap((x) => x.pool[k] ?? []);
    Object.assign(metrics, { [`${k}/mean`]: mean(all), [`${k}/std`]: stdUnbiased(all) });
  }
  return { ...r, metrics, tokens: ranks.reduce((a, x) => a + x.tokens, 0) };
}

export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
