/**
 * Datasets that would train to a "finished" run that means nothing are refused before any run
 * directory exists: a training split of one class (nothing to tell apart; also what a JSONL whose rows
 * repeat the label key used to collapse to), and an empty dev split (a dev set carved from 100 rows of
 * 100 classes keeps every row in train and reported "dev: accuracy 0.0000"). Labels that differ only
 * by case are allowed (they may be meant) but reported, naming both.
 */
import { GtaError } from '../util/errors.js';
import type { Dataset } from './types.js';

export function checkSplits(data: Dataset, dataFraction: number): void {
  const trainFile = data.files.train;
  const seen = new Set(data.train.map((e) => e.label));
  if (seen.size < 2) {
    const only = data.labels[data.train[0]?.label ?? 0];
    throw new GtaError(`${trainFile}: all ${data.train.length} training examples have the label '${only}'; a classifier needs examples of at least two classes`);
  }
  if (data.dev.length === 0) {
    throw new GtaError(
      data.devSource === 'carved'
        ? `${trainFile}: data.dev_fraction ${dataFraction} of ${data.train.length} rows in ${data.labels.length} classes carves no dev example (each class keeps at least one row in train); give data.dev_file, or more rows per class`
        : `${data.files.dev}: the dev split has no examples`,
    );
  }
}

/** A warning for each pair of labels that differ only by case ('Positive' and 'positive'). */
export function caseWarnings(labels: string[]): string[] {
  const first = new Map<string, string>();
  const out: string[] = [];
  for (const l of labels) {
    const key = l.toLowerCase();
    const other = first.get(key);
    if (other === undefined) first.set(key, l);
    else out.push(`labels '${other}' and '${l}' differ only by case; they are different classes`);
  }
  return out;
}

/**
 * A step's examples (prompts in a grouped mode) must exist: a batch larger than the training split
 * would be filled by repeating it, unboundedly (train.batch_size=1000000000 ran out of memory).
 */
export function checkBatch(data: Dataset, batchSize: number, groupSize: number | undefined): void {
  const perStep = groupSize ? batchSize / groupSize : batchSize;
  if (perStep > data.train.length) {
    const what = groupSize ? `${perStep} prompts a step (train.batch_size ${batchSize} / rl.group_size ${groupSize})` : `${batchSize} examples a step`;
    throw new GtaError(`train.batch_size: ${what} is more than the ${data.train.length} training examples of ${data.files.train}`);
  }
}
