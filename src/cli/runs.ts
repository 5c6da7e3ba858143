/**
 * `gta runs [DIR]`: one line per run of a runs folder (default `runs`), newest first: name, mode,
 * dataset, status, step, dev accuracy and wall time, so a run can be found without opening its JSON.
 * A sweep folder's runs (`<sweep>/runs/*`) are listed as `<sweep>/<run>`; DIR may also be one sweep
 * folder or one run directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { RunDir, RUN_FILES, runDirsIn, runStatus } from '../run/run_dir.js';
import type { RunInfo, RunSummary } from '../run/files.js';
import { GtaError } from '../util/errors.js';
import { formatDuration } from '../util/format.js';

export interface RunRow {
  name: string;
  mode: string;
  dataset: string;
  status: string;
  step: number | null;
  /** Final accuracy (or, before the end, the last periodic eval's, with its step), or a pretraining run's perplexity. */
  dev: string;
  wall: string;
  /** For the order: when the run started (ms since the epoch). */
  started: number;
}

export function runsCommand(a: { dir: string }): void {
  const rows = listRuns(a.dir);
  if (rows.length === 0) {
    process.stdout.write(`no runs in ${a.dir}\n`);
    return;
  }
  process.stdout.write(formatRuns(rows));
}

/** The runs under `dir`, newest first. */
export function listRuns(dir: string): RunRow[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new GtaError(`${dir}: no such folder`);
  const found: { dir: string; name: string }[] = [];
  const add = (dirs: string[], prefix: string) => dirs.forEach((d) => found.push({ dir: d, name: prefix + path.basename(d) }));
  if (runStatus(dir) !== null || fs.existsSync(path.join(dir, 'runs'))) {
    // DIR is itself a run directory or a sweep folder.
    add(runDirsIn(dir), '');
  } else {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory())) {
      const child = path.join(dir, entry.name);
      if (fs.existsSync(path.join(child, RUN_FILES.info))) add([child], '');
      else if (fs.existsSync(path.join(child, 'runs'))) add(runDirsIn(child), `${entry.name}/`);
    }
  }
  return found.map((f) => describeRun(f.dir, f.name)).sort((x, y) => y.started - x.started || x.name.localeCompare(y.name));
}

function describeRun(dir: string, name: string): RunRow {
  const run = new RunDir(dir);
  let info: Partial<RunInfo> = {};
  let unreadable = false;
  try {
    info = run.info();
  } catch {
    // run.json unreadable or not a run.json: listed with what is known
    unreadable = true;
  }
  let summary: RunSummary | null = null;
  try {
    summary = run.summary();
  } catch {
    summary = null;
  }
  const metrics = run.readJsonl(RUN_FILES.metrics);
  const last = metrics.at(-1);
  const lastEval = metrics.filter((l) => typeof l['eval/accuracy'] === 'number').at(-1);
  let dev = '–';
  if (typeof summary?.final?.accuracy === 'number') {
    dev = summary.final.accuracy.toFixed(4) + (summary.final.split && summary.final.split !== 'dev' ? ` (${summary.final.split})` : '');
  } else if (typeof summary?.held_out_perplexity === 'number') {
    dev = `ppl ${summary.held_out_perplexity.toFixed(1)}`;
  } else if (lastEval) {
    dev = `${Number(lastEval['eval/accuracy']).toFixed(4)} @${lastEval.step}`;
  }
  const step = summary?.steps ?? info.step ?? (last ? Number(last.step) : null);
  const wall = summary?.wall_time_s ?? (last ? Number(last.time_s) : undefined);
  const started = Date.parse(info.started ?? '');
  return {
    name,
    mode: info.mode ?? '?',
    dataset: info.dataset?.name ?? '–',
    status: unreadable ? 'bad run.json' : (info.status ?? '?'),
    step: step ?? null,
    dev,
    wall: wall === undefined || !Number.isFinite(wall) ? '–' : formatDuration(wall),
    started: Number.isFinite(started) ? started : fs.statSync(dir).mtimeMs,
  };
}

/** An aligned table: a header, then one line per run; step and time right-aligned. */
export function formatRuns(rows: RunRow[]): string {
  const header = ['run', 'mode', 'dataset', 'status', 'step', 'dev acc', 'time'];
  const right = [false, false, false, false, true, false, true];
  const cells = rows.map((r) => [r.name, r.mode, r.dataset, r.status, r.step === null ? '–' : String(r.step), r.dev, r.wall]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => (right[i] ? x.padStart(widths[i]) : x.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), ...cells.map(line)].join('\n') + '\n';
}
