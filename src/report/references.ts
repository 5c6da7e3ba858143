/**
 * The reference rows of a comparison (majority class, bag-of-words logistic regression) per dataset,
 * on the data a run of that dataset saw: its resolved config's data section, loaded as the run loaded
 * it (same split seed, same subsets). Cached per (dataset, data config), since a sweep has many runs
 * of each dataset and `compare-baselines` writes its report again on every invocation.
 */
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema } from '../config/schema.js';
import { loadDataset } from '../data/load.js';
import { bowLogregReference, majorityReference, type ReferenceResult } from '../eval/reference.js';
import { RUN_FILES } from '../run/run_dir.js';
import type { RunRecord } from './aggregate.js';
import type { CompareRow, Stat } from './render.js';

/** The reference rows' arms, in the order their rows come (before the trained arms). */
export const REFERENCE_MODES = ['majority', 'bow-logreg'] as const;
type ReferenceMode = (typeof REFERENCE_MODES)[number];

const cache = new Map<string, Promise<Record<ReferenceMode, ReferenceResult>>>();

/** Both references for the data of `runDir`'s config. */
export function referencesFor(runDir: string): Promise<Record<ReferenceMode, ReferenceResult>> {
  const { config } = loadConfig(TrainConfigSchema, path.join(runDir, RUN_FILES.config));
  const key = JSON.stringify(config.data);
  let hit = cache.get(key);
  if (!hit) {
    hit = loadDataset(config.data, config.data.split_seed).then((ds) => ({ majority: majorityReference(ds), 'bow-logreg': bowLogregReference(ds) }));
    cache.set(key, hit);
    hit.catch(() => cache.delete(key)); // a failure is not remembered: the files may be back next time
  }
  return hit;
}

/** One deterministic value as a Stat of one seed, so its columns read like a single-seed run's. */
const one = (x: number): Stat => ({ mean: x, std: 0, n: 1 });

/** Reference rows per dataset of `records` (the first run's data config stands for the dataset). */
export async function referenceRows(records: RunRecord[], columnOrder: string[], warn: (dataset: string, err: Error) => void): Promise<CompareRow[]> {
  const rows: CompareRow[] = [];
  for (const dataset of [...new Set(records.map((r) => r.dataset))]) {
    let refs: Record<ReferenceMode, ReferenceResult>;
    try {
      refs = await referencesFor(records.find((r) => r.dataset === dataset)!.dir);
    } catch (e) {
      warn(dataset, e as Error);
      continue;
    }
    for (const arm of REFERENCE_MODES) {
      const { dev, test } = refs[arm];
      const values: Record<string, Stat> = {
        'final accuracy': one(dev.accuracy),
        'final f1_weighted': one(dev.f1_weighted),
        ...(test ? { 'test accuracy': one(test.accuracy), 'test f1_weighted': one(test.f1_weighted) } : {}),
      };
      // the trained arms' columns in their order ('–' where a reference has no value: no curve, no tokens),
      // so the rows coming first do not reorder the table
      const columns: CompareRow['columns'] = Object.fromEntries(columnOrder.map((c) => [c, values[c] ?? null]));
      rows.push({ dataset, arm, seeds: 1, columns: { ...columns, ...values } });
    }
  }
  return rows;
}

/** Rows of every dataset with its reference rows first, datasets in the order the rows had. */
export function withReferences(rows: CompareRow[], refs: CompareRow[]): CompareRow[] {
  const datasets = [...new Set([...rows, ...refs].map((r) => r.dataset))];
  return datasets.flatMap((d) => [...refs.filter((r) => r.dataset === d), ...rows.filter((r) => r.dataset === d)]);
}
