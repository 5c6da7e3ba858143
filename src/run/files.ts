/**
 * What a run directory's JSON files hold, typed once: run.json (RunInfo) and summary.json (RunSummary).
 * The commands write these types and RunDir.info() / RunDir.summary() return them, so readers (reports,
 * `gta runs`, resume) share one declaration instead of casts of their own. Files of older versions may
 * lack the optional keys.
 *
 * Both are checked against a schema wherever they are read (RunDir.info(), RunDir.summary(), runStatus):
 * a garbage run.json (`x{`, `null`, `[1,2,3]`) is one line naming the file, never a TypeError deep in
 * a resume or a report, and never a run resumed into "finished" with no mode.
 */
import path from 'node:path';
import { z } from 'zod';
import { GtaError } from '../util/errors.js';

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
  /** A hash of the resolved config (src/run/config_identity.ts); runs made before it was recorded lack it. */
  config_sha256?: string;
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

const RUN_STATUSES = ['running', 'finished', 'failed', 'interrupted'] as const;

/**
 * What readers rely on in run.json: a mapping with a known status, and the keys it has of the right
 * type (gta always writes mode and seed; a hand-made file may lack them). The rest (provenance, model,
 * ...) passes through unchecked.
 */
export const RunInfoSchema = z.looseObject({
  status: z.enum(RUN_STATUSES),
  mode: z.string().optional(),
  seed: z.number().optional(),
  arm: z.string().optional(),
  dataset: z.looseObject({ name: z.string(), labels: z.array(z.string()).optional(), sizes: z.record(z.string(), z.number()).optional(), dev_source: z.string().optional() }).optional(),
  started: z.string().optional(),
  updated: z.string().optional(),
  finished: z.string().optional(),
  error: z.string().optional(),
  step: z.number().optional(),
  config_sha256: z.string().optional(),
  resumes: z.array(z.looseObject({ from_step: z.number(), at: z.string(), overrides: z.array(z.string()), command: z.array(z.string()) })).optional(),
});

const EvalSummarySchema = z.looseObject({ split: z.string(), accuracy: z.number(), f1_weighted: z.number() });

/** What readers rely on in summary.json. */
export const RunSummarySchema = z.looseObject({
  status: z.enum(['finished', 'interrupted']),
  steps: z.number().optional(),
  wall_time_s: z.number().optional(),
  final: EvalSummarySchema.optional(),
  test: EvalSummarySchema.optional(),
});

/** `text` of `file` checked against `schema`, or a one-line GtaError naming the file and the first problem. */
export function parseRunFile<T>(file: string, text: string, schema: z.ZodType): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new GtaError(`${file}: not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GtaError(`${file}: not a gta ${path.basename(file)}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return parsed.data as T;
}
