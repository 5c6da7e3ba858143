/**
 * A fine-tuning run: the mode's runner and the classification evaluator through the shared loop
 * (loop.ts), then summary.json's content. Periodic evals score a fixed seeded subset of the eval
 * split; the final eval scores all of it and writes predictions.jsonl.
 */
import type { TrainConfig } from '../config/schema.js';
import { subset } from '../data/load.js';
import type { Example } from '../data/types.js';
import { evalFormat, evaluate, type EvalResult } from '../eval/evaluate.js';
import type { EvalSummary, RunSummary } from '../run/files.js';
import type { RunDir } from '../run/run_dir.js';
import type { Logger } from '../util/log.js';
import { startProgress } from '../util/progress.js';
import { STREAMS } from '../util/rng.js';
import { Trainer } from './trainer.js';
import { trainLoop, type EvalOutcome, type Evaluator } from './loop.js';
import { modeRunner } from './modes.js';
import type { Prepared } from './setup.js';

export async function finetune(
  cfg: TrainConfig,
  p: Prepared,
  run: RunDir,
  log: Logger,
  shouldStop: () => boolean,
  /** A training checkpoint folder to continue from (gta train --resume). */
  resumeFrom?: string,
): Promise<RunSummary> {
  const trainer = new Trainer(p.model, cfg.train.optim);
  log.info({ mode: cfg.mode }, 'mode');
  const r = await trainLoop({
    cfg: { seed: cfg.seed, ...cfg.train, final_checkpoint: cfg.eval.final_checkpoint },
    runner: modeRunner(cfg, p, trainer),
    model: p.model,
    tokenizer: p.tokenizer,
    optimizer: trainer.optimizer,
    evaluator: classificationEvaluator(cfg, p, run, log),
    run,
    log,
    shouldStop,
    label: 'train',
    resumeFrom,
  });
  // (a data-parallel rank past the first finishes without the final evaluation: rank 0 makes it)
  if (r.status === 'interrupted' || !r.final) return { status: r.status, steps: r.steps, wall_time_s: r.wall_time_s };
  return {
    status: r.status,
    mode: cfg.mode,
    dataset: p.data.name,
    steps: r.steps,
    epochs: r.epochs,
    wall_time_s: r.wall_time_s,
    train_tokens: r.train_tokens,
    final: r.final!.summary as EvalSummary,
    ...(r.final!.also ? { test: r.final!.also.summary as EvalSummary } : {}),
    best_during_training: r.best,
    ...(r.stopped_early ? { stopped_early: r.stopped_early } : {}),
  };
}

function classificationEvaluator(cfg: TrainConfig, p: Prepared, run: RunDir, log: Logger): Evaluator {
  const split = cfg.eval.split === 'test' ? p.data.test : p.data.dev;
  const quick = subset(split, cfg.eval.max_examples_during_training, STREAMS.periodicEval(cfg.data.split_seed));
  const score = (examples: Example[], label: string, model = p.model): EvalResult => {
    const bar = startProgress(label, examples.length, log);
    const res = evaluate(
      { model, tokenizer: p.tokenizer, prompts: p.prompts, labels: p.data.labels, batchSize: cfg.eval.batch_size, maxNewTokens: cfg.eval.max_new_tokens, ...evalFormat(cfg), onProgress: (d) => bar.update(d) },
      examples,
    );
    bar.stop();
    return res;
  };
  return {
    split: cfg.eval.split,
    periodic: (step) => outcome(score(quick, `eval@${step}`)),
    final(last, weights) {
      // which weights: the last step's, or checkpoints/best's (eval.final_checkpoint: best)
      const step = weights?.step ?? last;
      const which = { checkpoint: weights?.checkpoint ?? 'latest', checkpoint_step: step };
      const res = score(split, `eval ${cfg.eval.split}`, weights?.model);
      for (const pred of res.predictions) run.appendJsonl('predictions.jsonl', { split: cfg.eval.split, step, ...pred });
      const final = { ...outcome(res), summary: { split: cfg.eval.split, ...which, ...res.metrics } };
      if (!cfg.eval.test_at_end || cfg.eval.split === 'test' || p.data.test.length === 0) return final;
      const test = score(p.data.test, 'eval test', weights?.model);
      for (const pred of test.predictions) run.appendJsonl('predictions.jsonl', { split: 'test', step, ...pred });
      return { ...final, also: { split: 'test', record: outcome(test).record, summary: { split: 'test', ...which, ...test.metrics } } };
    },
  };
}

function outcome(res: EvalResult): EvalOutcome {
  const m = res.metrics;
  const record: Record<string, number> = {
    'eval/n': m.n,
    'eval/accuracy': m.accuracy,
    'eval/f1_weighted': m.f1_weighted,
    'eval/f1_macro': m.f1_macro,
    'eval/generate_accuracy': m.generate_accuracy,
    'eval/invalid_rate': m.invalid_rate,
  };
  for (const k of ['format_valid_rate', 'guess_accuracy', 'revision_rate', 'revisions_fixed', 'revisions_broke'] as const) {
    if (m[k] !== undefined) record[`eval/${k}`] = m[k]!;
  }
  record['perf/eval_examples_per_s'] = res.examplesPerSecond;
  return { record, summary: { ...m }, rank: { score: m.accuracy, keep: { accuracy: m.accuracy, f1_weighted: m.f1_weighted } } };
}
