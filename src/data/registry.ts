/**
 * The benchmarks shipped in the repository's datasets/ folder, by name.
 */
import { join } from 'node:path';
import { GtaError } from '../util/errors.js';
import { repoRoot } from '../util/paths.js';

export const BUILTIN_DATASETS: readonly string[] = [
  'sst2',
  'ag_news',
  'sst5',
  'massive_scenario',
  'emotion',
  'bbc_news',
  'trec',
];

export function isBuiltinDataset(name: string): boolean {
  return BUILTIN_DATASETS.includes(name);
}

/** Absolute folder of a built-in dataset; GtaError listing the known names for anything else. */
export function datasetDir(name: string): string {
  if (!isBuiltinDataset(name)) {
    throw new GtaError(`unknown dataset '${name}' (built-in datasets: ${BUILTIN_DATASETS.join(', ')}; or set train_file)`);
  }
  return join(repoRoot(), 'datasets', name);
}
