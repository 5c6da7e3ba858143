/**
 * What a run directory's JSON files hold, typed once: run.json (RunInfo) and summary.json (RunSummary).
 * The commands write these types and RunDir.info() / RunDir.summary() return them, so readers (reports,
 * `gta runs`, resume) share one declaration instead of casts of their own. Files of older versions may
 * lack the optional keys.
 */

export type RunStatus = 'running' | 'finished' | 'failed' | 'interrupted';

/** One `--resume` of the run (RunDir.resumeAt). */
export interface RunResume {
  from_step: number;
  at: string;
  overrides: string[];
  command: string[];
}

/** run.json: the run's state, and what made it (config, backend, model, data, versions). */
export interface RunInfo {
  status: RunStatus;
  /** A training mode, or 'pretrain'. */
  mode: string;
  seed: number;
  /** A comparison's arm (compare-baselines sets it). */
  arm?: string;
  dataset?: { name: string; labels?: string[]; sizes?: Record<string, number>; dev_source?: string };
  started?: string;
  updated?: string;
  finished?: string;
  /** The error of a failed run. */
  error?: string;
  /** The step an interrupted run stopped at. */
  step?: number;
  resumes?: RunResume[];
  /** The rest: config file, overrides, backend, init, model, provenance (src/run/run_dir.ts provenance()). */
  [key: string]: unknown;
}

/** An evaluation as summary.json keeps it: the split and its metrics (src/eval/metrics.ts). */
export interface EvalSummary {
  split: string;
  accuracy: number;
  f1_weighted: number;
  f1_macro: number;
  generate_accuracy: number;
  invalid_rate: number;
  /** The weights scored (eval.final_checkpoint) and their step. */
  checkpoint?: 'latest' | 'best';
  checkpoint_step?: number;
  /** GTA's guess. */
  guess_accuracy?: number;
  [metric: string]: unknown;
}

/** summary.json: how a run ended; a finished fine-tuning run's final (and test) evaluation, a pretraining run's perplexity. */
export interface RunSummary {
  status: 'finished' | 'interrupted';
  steps: number;
  wall_time_s: number;
  mode?: string;
  dataset?: string;
  epochs?: number;
  train_tokens?: number;
  final?: EvalSummary;
  test?: EvalSummary;
  best_during_training?: { step: number } & Record<string, number>;
  /** train.early_stopping ended the run at `step`; the best periodic eval was at best_step. */
  stopped_early?: { step: number; best_step: number; patience: number; min_delta: number };
  /** Pretraining: the base checkpoint written, and its held-out loss and perplexity. */
  checkpoint?: string;
  held_out_loss?: number;
  held_out_perplexity?: number;
  params?: number;
}
