/**
 * The fine-tuning loop shared by the training modes: batches from the seeded sampler, a warmup/decay
 * learning rate, periodic evaluation and checkpoints, metrics.jsonl lines as they happen, and
 * summary.json at the end. The mode decides what one step does (SFT today).
 */
import type { TrainConfig } from '../config/schema.js';
import { subset } from '../data/load.js';
import type { Example } from '../data/types.js';
import { evalFormat, evaluate, type EvalResult } from '../eval/evaluate.js';
import { loadTrainingState, saveCheckpoint } from '../model/checkpoint.js';
import type { RunDir } from '../report/run_dir.js';
import type { Logger } from '../util/log.js';
import { startProgress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { AdamW, NonFiniteError } from './adamw.js';
import { GtaError } from '../util/errors.js';
import { BatchSampler, type SamplerPosition } from './sampler.js';
import { learningRate } from './schedule.js';
import type { Prepared } from './setup.js';
import { modeRunner } from './modes.js';

export interface FinetuneResult {
  summary: Record<string, unknown>;
}

/** Everything the loop carries from step to step; saved in trainer_state.json so a resume continues exactly. */
interface LoopState {
  step: number;
  position: SamplerPosition;
  best: { step: number; accuracy: number; f1_weighted: number } | null;
  tokens_seen: number;
  /** Metric sums of the log window in progress (so a resume writes the same averaged lines). */
  window: { sums: Record<string, number>; steps: number; tokens: number };
  elapsed_s: number;
  last_samples: Record<string, unknown>[];
  runner: Record<string, unknown>;
}

export async function finetune(
  cfg: TrainConfig,
  p: Prepared,
  run: RunDir,
  log: Logger,
  shouldStop: () => boolean,
  /** A training checkpoint folder to continue from (gta train --resume). */
  resumeFrom?: string,
): Promise<FinetuneResult> {
  const { model, tokenizer, prompts, data } = p;
  const optimizer = new AdamW(model.params, cfg.train.optim);
  const runner = modeRunner(cfg, p, optimizer);
  let S: LoopState = { step: 0, position: { epoch: 0, batch: 0 }, best: null, tokens_seen: 0, window: { sums: {}, steps: 0, tokens: 0 }, elapsed_s: 0, last_samples: [], runner: {} };
  if (resumeFrom) {
    S = loadTrainingState(resumeFrom, optimizer) as unknown as LoopState;
    runner.restore(S.runner);
    log.info({ step: S.step, checkpoint: resumeFrom }, 'resuming');
  }
  const t0 = performance.now() - S.elapsed_s * 1000;
  const elapsed = () => (performance.now() - t0) / 1000;
  const sampler = new BatchSampler(runner.lengths, runner.batchSize, cfg.seed);
  const totalSteps = cfg.train.steps ?? Math.max(1, Math.round(cfg.train.epochs * sampler.batchesPerEpoch));
  const evalSplit = cfg.eval.split === 'test' ? data.test : data.dev;
  // Periodic evals score a fixed seeded subset; the final eval scores the whole split.
  const quickEval = subset(evalSplit, cfg.eval.max_examples_during_training, new Rng(cfg.data.split_seed + 17));
  const ckptDir = run.file('checkpoints');
  const runEval = (examples: Example[], label: string): EvalResult => {
    const bar = startProgress(label, examples.length, log);
    const res = evaluate(
      { model, tokenizer, prompts, labels: data.labels, batchSize: cfg.eval.batch_size, maxNewTokens: cfg.eval.max_new_tokens, ...evalFormat(cfg), onProgress: (d) => bar.update(d) },
      examples,
    );
    bar.stop();
    return res;
  };

  let pos = S.position;
  let best = S.best ?? undefined;
  let tokensSeen = S.tokens_seen;
  let window = { ...S.window, start: performance.now() };
  let step = S.step;
  let interrupted = false;
  let lastSamples = S.last_samples;
  log.info({ mode: cfg.mode, steps: totalSteps, batches_per_epoch: sampler.batchesPerEpoch, train_examples: runner.lengths.length }, 'training');
  const bar = startProgress('train', totalSteps, log);
  bar.update(step);
  const save = (name: string) => {
    const state: LoopState = {
      step,
      position: pos,
      best: best ?? null,
      tokens_seen: tokensSeen,
      window: { sums: window.sums, steps: window.steps, tokens: window.tokens },
      elapsed_s: elapsed(),
      last_samples: lastSamples,
      runner: runner.state(),
    };
    saveCheckpoint(`${ckptDir}/${name}`, model, tokenizer, { kind: 'training', step, optimizer, trainerState: state });
  };

  while (step < totalSteps) {
    // Let signal handlers run between steps (the step itself is synchronous).
    await new Promise((r) => setImmediate(r));
    if (shouldStop()) {
      interrupted = true;
      break;
    }
    const { indices, next } = sampler.next(pos);
    const lr = learningRate(step, totalSteps, cfg.train.optim);
    let r;
    try {
      r = runner.step(indices, lr);
    } catch (e) {
      // The optimizer refuses non-finite numbers before touching the weights, so no checkpoint is poisoned.
      if (!(e instanceof NonFiniteError)) throw e;
      if (cfg.train.on_nonfinite === 'stop') throw new GtaError(`${e.message} at step ${step + 1}; the step was not applied (train.on_nonfinite: skip would skip such steps)`, 1);
      log.warn(`${e.message} at step ${step + 1}: step skipped`);
      r = { metrics: { 'train/nonfinite_skipped': 1 }, tokens: 0 };
    }
    for (const [k, v] of Object.entries(r.metrics)) window.sums[k] = (window.sums[k] ?? 0) + (Number.isFinite(v) ? v : 0);
    pos = next;
    step += 1;
    tokensSeen += r.tokens;
    window.steps += 1;
    window.tokens += r.tokens;
    lastSamples = r.samples ?? lastSamples;
    const epoch = pos.epoch + pos.batch / sampler.batchesPerEpoch;
    if (step % cfg.train.log_every === 0 || step === totalSteps) {
      const secs = (performance.now() - window.start) / 1000;
      const rec: Record<string, number | string> = { step, epoch: round(epoch), time_s: round(elapsed()), split: 'train' };
      for (const [k, v] of Object.entries(window.sums)) rec[k] = v / window.steps;
      Object.assign(rec, { 'train/lr': lr, 'perf/tokens_per_s': window.tokens / secs, 'perf/tokens_seen': tokensSeen });
      run.appendJsonl('metrics.jsonl', rec);
      const lossKey = 'reward/total/mean' in rec ? 'reward/total/mean' : 'train/loss_sft';
      bar.update(step, { [lossKey.split('/').slice(-2).join('/')]: Number(rec[lossKey] ?? NaN), 'tok/s': Math.round(Number(rec['perf/tokens_per_s'])) });
      window = newWindow();
    }
    if (step % cfg.train.eval_every === 0 && step < totalSteps) {
      const res = runEval(quickEval, `eval@${step}`);
      run.appendJsonl('metrics.jsonl', evalRecord(step, epoch, elapsed(), cfg.eval.split, res));
      for (const sample of lastSamples) run.appendJsonl('samples.jsonl', { step, ...sample });
      log.info({ step, accuracy: res.metrics.accuracy, f1_weighted: res.metrics.f1_weighted }, 'eval');
      if (!best || res.metrics.accuracy > best.accuracy) {
        best = { step, accuracy: res.metrics.accuracy, f1_weighted: res.metrics.f1_weighted };
        save('best');
      }
    }
    if (step % cfg.train.checkpoint_every === 0 && step < totalSteps) save('latest');
  }
  bar.stop();
  save('latest');
  if (interrupted) {
    return { summary: { status: 'interrupted', steps: step, wall_time_s: elapsed() } };
  }
  const final = runEval(evalSplit, `eval ${cfg.eval.split}`);
  run.appendJsonl('metrics.jsonl', evalRecord(step, pos.epoch + pos.batch / sampler.batchesPerEpoch, elapsed(), cfg.eval.split, final));
  for (const pred of final.predictions) run.appendJsonl('predictions.jsonl', { split: cfg.eval.split, step, ...pred });
  // The final weights count as a candidate for best too (periodic evals used a subset, so compare on that).
  if (!best) {
    best = { step, accuracy: final.metrics.accuracy, f1_weighted: final.metrics.f1_weighted };
    save('best');
  }
  const summary = {
    status: 'finished',
    mode: cfg.mode,
    dataset: data.name,
    steps: step,
    epochs: round(step / sampler.batchesPerEpoch),
    wall_time_s: round(elapsed()),
    train_tokens: tokensSeen,
    final: { split: cfg.eval.split, ...final.metrics },
    best_during_training: best,
  };
  return { summary };
}

function newWindow() {
  return { sums: {} as Record<string, number>, steps: 0, tokens: 0, start: performance.now() };
}

export function evalRecord(step: number, epoch: number, time: number, split: string, res: EvalResult): Record<string, unknown> {
  const m = res.metrics;
  const extra: Record<string, number> = {};
  for (const k of ['format_valid_rate', 'guess_accuracy', 'revision_rate', 'revisions_fixed', 'revisions_broke'] as const) {
    if (m[k] !== undefined) extra[`eval/${k}`] = m[k]!;
  }
  return {
    step,
    epoch: round(epoch),
    time_s: round(time),
    split,
    'eval/n': res.metrics.n,
    'eval/accuracy': res.metrics.accuracy,
    'eval/f1_weighted': res.metrics.f1_weighted,
    'eval/f1_macro': res.metrics.f1_macro,
    'eval/invalid_rate': res.metrics.invalid_rate,
    ...extra,
    'perf/eval_examples_per_s': res.examplesPerSecond,
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
