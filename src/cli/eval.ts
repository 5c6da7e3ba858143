/**
 * `gta eval --run DIR [--split test] [--checkpoint best]`: re-scores a run's checkpoint on a split;
 * `gta eval --run DIR --file FILE`: scores it on a labelled file of the user's instead.
 */
import path from 'node:path';
import { loadDataset, loadLabelledFile } from '../data/load.js';
import { evaluate } from '../eval/evaluate.js';
import { createLogger } from '../util/log.js';
import { GtaError } from '../util/errors.js';
import { startProgress } from '../util/progress.js';
import { openRun } from './open_run.js';

export interface EvalArgs {
  run: string;
  split: 'dev' | 'test';
  checkpoint: 'latest' | 'best';
  /** A labelled CSV, TSV or JSONL file (the run's text and label columns) scored instead of a split. */
  file?: string;
  batchSize?: number;
  backend?: string;
  logLevel: string;
}

export async function evalCommand(a: EvalArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  const { run, config, backend, labels, meta, ctx } = await openRun(a.run, a.checkpoint, { backend: a.backend, batchSize: a.batchSize, log });
  let examples;
  if (a.file !== undefined) {
    examples = await loadLabelledFile(a.file, config.data, labels);
  } else {
    const data = await loadDataset(config.data, config.data.split_seed);
    examples = a.split === 'test' ? data.test : data.dev;
    if (examples.length === 0) throw new GtaError(`dataset ${data.name} has no ${a.split} split`);
  }
  // what was scored: a split, or the file by its name (eval-file-<name>-<checkpoint>.json)
  const what = a.file !== undefined ? `file-${path.basename(a.file).replace(/(\.(csv|tsv|jsonl))?(\.gz)?$/i, '').replace(/[^A-Za-z0-9._-]/g, '_')}` : a.split;
  const bar = startProgress(`eval ${a.file ?? a.split}`, examples.length, log);
  const res = evaluate({ ...ctx, onProgress: (d) => bar.update(d) }, examples);
  bar.stop();
  const name = `eval-${what}-${a.checkpoint}`;
  run.writeJson(`${name}.json`, {
    ...(a.file !== undefined ? { file: path.resolve(a.file) } : { split: a.split }),
    checkpoint: a.checkpoint,
    step: meta.step,
    backend,
    examples_per_s: res.examplesPerSecond,
    evaluated: new Date().toISOString(),
    ...res.metrics,
  });
  run.writeFile(`${name}.predictions.jsonl`, res.predictions.map((p) => JSON.stringify(p)).join('\n') + '\n');
  const m = res.metrics;
  process.stdout.write(
    `${a.file ?? a.split} (${a.checkpoint}, step ${meta.step}): accuracy ${m.accuracy.toFixed(4)}  f1_weighted ${m.f1_weighted.toFixed(4)}  f1_macro ${m.f1_macro.toFixed(4)}  generate_accuracy ${m.generate_accuracy.toFixed(4)}  invalid ${m.invalid_rate.toFixed(4)}  n=${m.n}\n`,
  );
  log.info({ file: run.file(`${name}.json`) }, 'eval written');
}
