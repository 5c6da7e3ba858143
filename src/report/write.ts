/** The comparison of finished runs as files: compare.jsonl, compare.md, curves.jsonl and the rendered report (plots, report.html). */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { aggregate, readRun, type ThresholdRule } from './aggregate.js';
import { markdownTable, renderReport } from './render.js';

/** Aggregates finished runs and writes compare.jsonl, compare.md, curves.jsonl and the rendered report. */
export async function writeReport(dirs: string[], out: string, title: string, threshold: ThresholdRule, log: Logger): Promise<void> {
  const records = dirs.map(readRun);
  const agg = aggregate(records, threshold);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'compare.jsonl'), agg.rows.map((r) => JSON.stringify({ ...r, threshold: agg.thresholds[r.dataset] })).join('\n') + '\n');
  fs.writeFileSync(path.join(out, 'curves.jsonl'), agg.curves.map((c) => JSON.stringify(c)).join('\n') + '\n');
  const table = markdownTable(agg.rows);
  const notes = Object.entries(agg.thresholds).map(([d, t]) => `${d}: threshold accuracy ${t.toFixed(4)}`);
  fs.writeFileSync(path.join(out, 'compare.md'), `# ${title}\n\n${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
  const files = await renderReport(out, { title, rows: agg.rows, curves: agg.curves, notes: [...notes, `runs: ${dirs.length}`] });
  process.stdout.write(`${table}\n\n${notes.join('\n')}\nreport: ${files.html}\n`);
  log.info({ out, runs: dirs.length }, 'report written');
}
