/**
 * Reads finished runs and aggregates them per (dataset, arm) over seeds: final and best accuracy and
 * weighted F1, steps and wall time to reach a threshold, the area under the eval-accuracy curve, tokens
 * processed; and the convergence curves (mean and std over seeds at every eval step).
 */
import { MODES } from '../config/modes.js';
import { RUN_FILES, RunDir } from '../run/run_dir.js';
import { mean, stdUnbiased } from '../util/stats.js';
import type { CompareRow, CurvePoint, Stat } from './render.js';

export interface RunRecord {
  dir: string;
  dataset: string;
  mode: string;
  /** What the comparison calls the run: its config's arm (a sweep's arm name), else its mode. */
  arm: string;
  seed: number;
  status: string;
  /** Evals of the run's eval split in step order (periodic ones on a subset, the last on the whole split), with the budget spent by then. */
  evals: { step: number; time_s: number; examples: number; tokens: number; accuracy: number; f1_weighted: number }[];
  /** Mean total reward of each logged training step (RL and GTA). */
  rewards: { step: number; value: number }[];
  final: Scores | null;
  /** The test split's score after the last step (eval.test_at_end), when the run has one. */
  test: Scores | null;
  tokens: number;
}

export function readRun(dir: string): RunRecord {
  const runDir = RunDir.open(dir);
  const run = runDir.info();
  const lines = runDir.readJsonl(RUN_FILES.metrics);
  const summary = runDir.summary();
  // the curves are the eval split's; a test line written after the last step (eval.test_at_end) is not on them
  const split = summary?.final?.split ?? lines.find((l) => l.split !== 'train' && 'eval/accuracy' in l)?.split;
  return {
    dir,
    dataset: run.dataset?.name ?? 'unknown',
    mode: run.mode,
    arm: run.arm ?? run.mode,
    seed: run.seed,
    status: run.status,
    evals: lines
      .filter((l) => l.split === split && 'eval/accuracy' in l)
      .map((l) => ({ step: Number(l.step), time_s: Number(l.time_s), examples: Number(l.examples_seen ?? NaN), tokens: Number(l.tokens_seen ?? NaN), accuracy: Number(l['eval/accuracy']), f1_weighted: Number(l['eval/f1_weighted']) })),
    rewards: lines.filter((l) => l.split === 'train' && 'reward/total/mean' in l).map((l) => ({ step: Number(l.step), value: Number(l['reward/total/mean']) })),
    final: summary?.final ? scores(summary.final) : null,
    test: summary?.test ? scores(summary.test) : null,
    tokens: summary?.train_tokens ?? 0,
  };
}

/** A final eval's scores; GTA's guess accuracy is what the answer would score if it copied the guess. */
export interface Scores { accuracy: number; f1_weighted: number; guess_accuracy?: number }

const scores = (s: Scores): Scores => ({ accuracy: s.accuracy, f1_weighted: s.f1_weighted, ...(s.guess_accuracy !== undefined ? { guess_accuracy: s.guess_accuracy } : {}) });

/** Mean and sample standard deviation (n - 1; 0 for a single value). */
export function stat(values: number[]): Stat {
  if (values.length === 0) return { mean: NaN, std: NaN, n: 0 };
  return { mean: mean(values), std: stdUnbiased(values), n: values.length };
}

/** Mean accuracy over the curve: the trapezoid area under accuracy vs step, divided by the step span. */
export function normalisedAuc(points: { step: number; accuracy: number }[]): number {
  if (points.length === 0) return NaN;
  if (points.length === 1) return points[0].accuracy;
  let area = 0;
  for (let i = 1; i < points.length; i++) area += ((points[i].accuracy + points[i - 1].accuracy) / 2) * (points[i].step - points[i - 1].step);
  return area / (points[points.length - 1].step - points[0].step);
}

function copyGuess(split: string, scores: (Scores | null)[]): Record<string, Stat> {
  return scores.every((s) => s?.guess_accuracy !== undefined) ? { [`${split} copy-guess accuracy`]: stat(scores.map((s) => s!.guess_accuracy!)) } : {};
}

export interface ThresholdRule {
  /** Share of the best arm's final mean accuracy on each dataset (default 0.95). */
  fraction?: number;
  /** Or a fixed accuracy. */
  absolute?: number;
}

export interface Aggregated {
  rows: CompareRow[];
  curves: CurvePoint[];
  thresholds: Record<string, number>;
}

export function aggregate(runs: RunRecord[], rule: ThresholdRule = {}): Aggregated {
  const groups = new Map<string, RunRecord[]>();
  for (const r of runs) {
    const key = `${r.dataset}\u0000${r.arm}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const finalOf = (r: RunRecord) => r.final?.accuracy ?? r.evals[r.evals.length - 1]?.accuracy ?? NaN;
  const thresholds: Record<string, number> = {};
  for (const dataset of new Set(runs.map((r) => r.dataset))) {
    if (rule.absolute !== undefined) thresholds[dataset] = rule.absolute;
    else {
      const best = Math.max(...[...groups.values()].filter((g) => g[0].dataset === dataset).map((g) => stat(g.map(finalOf)).mean));
      thresholds[dataset] = (rule.fraction ?? 0.95) * best;
    }
  }
  const rows: CompareRow[] = [];
  const curves: CurvePoint[] = [];
  for (const group of groups.values()) {
    const { dataset, arm } = group[0];
    const threshold = thresholds[dataset];
    const reach = group.map((r) => r.evals.find((e) => e.accuracy >= threshold)).filter((e) => e !== undefined);
    rows.push({
      dataset,
      arm,
      seeds: group.length,
      columns: {
        'final accuracy': stat(group.map(finalOf)),
        'final f1_weighted': stat(group.map((r) => r.final?.f1_weighted ?? r.evals[r.evals.length - 1]?.f1_weighted ?? NaN)),
        'best accuracy': stat(group.map((r) => Math.max(...r.evals.map((e) => e.accuracy)))),
        'best f1_weighted': stat(group.map((r) => Math.max(...r.evals.map((e) => e.f1_weighted)))),
        'steps to threshold': reach.length ? stat(reach.map((e) => e.step)) : null,
        'seconds to threshold': reach.length ? stat(reach.map((e) => e.time_s)) : null,
        'examples to threshold': reach.length && reach.every((e) => Number.isFinite(e.examples)) ? stat(reach.map((e) => e.examples)) : null,
        'seeds reaching threshold': reach.length,
        'accuracy AUC': stat(group.map((r) => normalisedAuc(r.evals))),
        tokens: Math.round(stat(group.map((r) => r.tokens)).mean),
        ...(group.every((r) => r.test) ? { 'test accuracy': stat(group.map((r) => r.test!.accuracy)), 'test f1_weighted': stat(group.map((r) => r.test!.f1_weighted)) } : {}),
        // GTA's copy-guess diagnostic: how the answer would score if it only repeated the guess
        ...copyGuess('final', group.map((r) => r.final)),
        ...copyGuess('test', group.map((r) => r.test)),
      },
    });
    // One point per step that has an eval or a logged reward; a point holds only the metrics measured there.
    const steps = [...new Set(group.flatMap((r) => [...r.evals.map((e) => e.step), ...r.rewards.map((x) => x.step)]))].sort((a, b) => a - b);
    for (const step of steps) {
      const at = group.map((r) => r.evals.find((e) => e.step === step)).filter((e) => e !== undefined);
      const rewards = group.map((r) => r.rewards.find((x) => x.step === step)?.value).filter((v): v is number => v !== undefined);
      const metrics: Record<string, Stat> = {};
      if (at.length) {
        Object.assign(metrics, { 'eval/accuracy': stat(at.map((e) => e.accuracy)), 'eval/f1_weighted': stat(at.map((e) => e.f1_weighted)) });
        // the other budget axes at this step, to draw the curve against examples, tokens or seconds
        for (const [axis, key] of [['examples_seen', 'examples'], ['tokens_seen', 'tokens'], ['time_s', 'time_s']] as const) {
          if (at.every((e) => Number.isFinite(e[key]))) metrics[axis] = stat(at.map((e) => e[key]));
        }
      }
      if (rewards.length) metrics['reward/total/mean'] = stat(rewards);
      curves.push({ dataset, arm, step, metrics });
    }
  }
  // arms by their mode (sft, rl, gta...), the arm named after the mode first, then by name
  const modeOf = new Map(runs.map((r) => [r.arm, r.mode]));
  const order = (arm: string) => [(MODES as readonly string[]).indexOf(modeOf.get(arm) ?? ''), arm === modeOf.get(arm) ? 0 : 1] as const;
  const byArm = (a: string, b: string) => order(a)[0] - order(b)[0] || order(a)[1] - order(b)[1] || a.localeCompare(b);
  rows.sort((a, b) => a.dataset.localeCompare(b.dataset) || byArm(a.arm, b.arm));
  curves.sort((a, b) => a.dataset.localeCompare(b.dataset) || byArm(a.arm, b.arm) || a.step - b.step);
  return { rows, curves, thresholds };
}
