/**
 * The comparison of finished runs as files: compare.jsonl, compare.md, curves.jsonl, stats.jsonl and the
 * rendered report (plots, report.html).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { RUN_FILES, RunDir } from '../run/run_dir.js';
import { aggregate, readRun, type RunRecord, type ThresholdRule } from './aggregate.js';
import { referenceRows, withReferences } from './references.js';
import { markdownTable, renderReport } from './render.js';
import { DEFAULT_PAIRS, pairedComparisons, type Correctness } from './statistics.js';
import { pairRows, statsDetails, statsSummary } from './stats_markdown.js';

/** What a report is of: its title, the threshold rule, and the pairs its statistics compare (default DEFAULT_PAIRS). */
export interface ReportOptions { title: string; threshold: ThresholdRule; pairs?: [string, string][] }

/** A sweep folder's report options, written by compare-baselines so `gta report` on the folder rebuilds the same report. */
export const SWEEP_FILE = 'sweep.json';

/** Aggregates finished runs and writes compare.jsonl, compare.md, curves.jsonl, stats.jsonl and the rendered report. */
export async function writeReport(dirs: string[], out: string, opts: ReportOptions, log: Logger): Promise<void> {
  const { title, threshold } = opts;
  const records = dirs.map(readRun);
  const agg = aggregate(records, threshold);
  const refs = await referenceRows(records, Object.keys(agg.rows[0]?.columns ?? {}), (dataset, err) => log.warn({ dataset, err: err.message }, 'no reference rows for this dataset'));
  const rows = withReferences(agg.rows, refs);
  const stats = pairedComparisons(records, correctnessOf(), opts.pairs ?? DEFAULT_PAIRS);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'compare.jsonl'), rows.map((r) => JSON.stringify({ ...r, threshold: agg.thresholds[r.dataset] })).join('\n') + '\n');
  fs.writeFileSync(path.join(out, 'curves.jsonl'), agg.curves.map((c) => JSON.stringify(c)).join('\n') + '\n');
  fs.writeFileSync(path.join(out, 'stats.jsonl'), stats.map((s) => JSON.stringify(s)).join('\n') + (stats.length ? '\n' : ''));
  const table = markdownTable(rows);
  const notes = Object.entries(agg.thresholds).sort(([a], [b]) => a.localeCompare(b)).map(([d, t]) => `${d}: threshold accuracy ${t.toFixed(4)}`);
  const summary = stats.length ? `Paired differences in accuracy (95% intervals):\n\n${statsSummary(stats)}` : '';
  // the headline first (is a mode better?), then the table it summarises, then how the intervals were made
  const md = [`# ${title}`, ...(stats.length ? ['## Paired differences (95% intervals)', statsSummary(stats), '## All arms'] : []), table, notes.map((n) => `- ${n}`).join('\n'), ...(stats.length ? ['## How the intervals were computed', statsDetails(stats)] : [])];
  fs.writeFileSync(path.join(out, 'compare.md'), md.map((s) => s.trimEnd()).join('\n\n') + '\n');
  const files = await renderReport(out, { title, rows, curves: agg.curves, pairs: pairRows(stats), notes: [...notes, `runs: ${dirs.length}`] });
  process.stdout.write(`${summary ? `${summary}\n` : ''}${table}\n${notes.join('\n')}\nreport: ${files.html}\n`);
  log.info({ out, runs: dirs.length }, 'report written');
}

/** Per-example correctness of a run's final eval, by split and example index (predictions.jsonl, read once per run). */
function correctnessOf(): (r: RunRecord) => Correctness | undefined {
  const seen = new Map<string, Correctness>();
  return (r) => {
    let c = seen.get(r.dir);
    if (!c) {
      c = new Map();
      const lines = RunDir.open(r.dir).readJsonl(RUN_FILES.predictions);
      // the last step's lines of each split: a run's final eval (a resumed run rewrites the file, so this is a guard)
      const last = new Map<string, number>();
      for (const l of lines) last.set(String(l.split), Math.max(last.get(String(l.split)) ?? -Infinity, Number(l.step)));
      for (const l of lines) {
        const split = String(l.split);
        if (Number(l.step) !== last.get(split) || typeof l.index !== 'number') continue;
        if (!c.has(split)) c.set(split, new Map());
        c.get(split)!.set(l.index, l.correct === true ? 1 : 0);
      }
      seen.set(r.dir, c);
    }
    return c.size ? c : undefined;
  };
}
