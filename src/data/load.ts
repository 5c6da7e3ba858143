/**
 * Turn a DataConfig into a Dataset: find the files (built-in or the user's), read them, map label names
 * to indices, carve dev from train when there is no dev file, and take the seeded subsets.
 *
 * Randomness: each purpose (dev carve, train subset, dev cap, test cap) draws from its own Rng stream
 * derived from (seed, purpose). So the carve never depends on max_train_examples or on the eval caps,
 * and the test subset does not move when dev_fraction changes.
 */
import { existsSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';
import { streamRng, type Rng } from '../util/rng.js';
import { atLine, GtaError } from '../util/errors.js';
import { readRegularFile } from '../util/regular_file.js';
import { datasetDir, isBuiltinDataset, BUILTIN_DATASETS } from './registry.js';
import { readTable, type Table } from './read_table.js';
import { caseWarnings } from './checks.js';
import type { DataConfig, Dataset, Example } from './types.js';

export type { DataConfig } from './types.js';

/** Where a dataset's pieces live. */
interface Sources {
  name: string;
  train: string;
  dev?: string;
  test?: string;
  labelsFile?: string;
}

/** A row reduced to its text and raw label name, still knowing its line for error messages. */
interface RawExample {
  text: string;
  label: string;
  line: number;
  row: Record<string, unknown>;
}

/** Each loaded example's whole row, as its file held it (what a reward module is given); kept beside, so Example stays { text, label }. */
const ROWS = new WeakMap<Example, Record<string, unknown>>();

/** The row an example was read from: every column of the data file, not only text and label. */
export function exampleRow(e: Example): Record<string, unknown> {
  return ROWS.get(e) ?? { text: e.text };
}

export async function loadDataset(cfg: DataConfig, seed: number): Promise<Dataset> {
  checkNumbers(cfg);
  const src = findSources(cfg);
  const format = cfg.format ?? 'auto';

  // Read the splits concurrently; a missing optional split is simply absent.
  const [trainT, devT, testT] = await Promise.all([
    readTable(src.train, format),
    src.dev === undefined ? undefined : readTable(src.dev, format),
    src.test === undefined ? undefined : readTable(src.test, format),
  ]);
  const rawTrain = extract(trainT, cfg);
  const rawDev = devT && extract(devT, cfg);
  const rawTest = testT && extract(testT, cfg);

  let labels: string[];
  // A given list (data.labels, a built-in's labels.txt) lets a label be a class index into it.
  let indices = true;
  if (cfg.labels !== undefined) labels = checkLabelList(cfg.labels, 'data.labels');
  else if (src.labelsFile !== undefined) labels = await readLabelsFile(src.labelsFile);
  else {
    labels = inferLabels(rawTrain, src.train, cfg.label_column);
    indices = false;
  }

  checkLabelCount(labels.length, cfg.labels !== undefined ? 'data.labels' : (src.labelsFile ?? src.train), cfg.label_column);
  const index = new Map(labels.map((l, i) => [l, i] as const));
  let train = toExamples(rawTrain, src.train, labels, index, indices);
  let dev: Example[];
  if (rawDev !== undefined && src.dev !== undefined) {
    dev = toExamples(rawDev, src.dev, labels, index, indices);
  } else {
    ({ train, dev } = carveDev(train, labels.length, cfg.dev_fraction, streamRng(seed, 'dev-carve')));
  }
  let test = rawTest !== undefined && src.test !== undefined ? toExamples(rawTest, src.test, labels, index, indices) : [];

  train = subset(train, cfg.max_train_examples, streamRng(seed, 'train-subset'));
  dev = subset(dev, cfg.max_eval_examples, streamRng(seed, 'dev-subset'));
  test = subset(test, cfg.max_eval_examples, streamRng(seed, 'test-subset'));

  const files: Record<string, string> = { train: src.train };
  if (src.dev !== undefined) files.dev = src.dev;
  if (src.test !== undefined) files.test = src.test;
  if (cfg.labels === undefined && src.labelsFile !== undefined) files.labels = src.labelsFile;
  return { name: src.name, labels, train, dev, test, devSource: src.dev !== undefined ? 'file' : 'carved', files, warnings: caseWarnings(labels) };
}

/**
 * A labelled file of the user's (`gta eval --file`), read as a split of a run's data: its columns are
 * the run's data.text_column and data.label_column, its labels names (or indices) of the run's list.
 */
export async function loadLabelledFile(file: string, cfg: Pick<DataConfig, 'format' | 'text_column' | 'label_column'>, labels: string[]): Promise<Example[]> {
  const table = await readTable(file, cfg.format ?? 'auto');
  return toExamples(extract(table, cfg), file, labels, new Map(labels.map((l, i) => [l, i] as const)), true);
}

function checkNumbers(cfg: DataConfig): void {
  const f = cfg.dev_fraction;
  if (!(Number.isFinite(f) && f >= 0 && f < 1)) throw new GtaError(`data.dev_fraction must be in [0, 1), got ${f}`);
  for (const key of ['max_train_examples', 'max_eval_examples'] as const) {
    const v = cfg[key];
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new GtaError(`data.${key} must be a positive integer, got ${v}`);
  }
}

/** Built-in: files from the dataset's folder. User: the paths as given. */
function findSources(cfg: DataConfig): Sources {
  const userFiles = cfg.train_file ?? cfg.dev_file ?? cfg.test_file;
  if (cfg.name !== undefined && isBuiltinDataset(cfg.name)) {
    if (userFiles !== undefined) {
      throw new GtaError(`data.name '${cfg.name}' is a built-in dataset: leave out train_file/dev_file/test_file, or use another name`);
    }
    const dir = datasetDir(cfg.name);
    const train = splitFile(dir, 'train');
    if (train === undefined) throw new GtaError(`${display(dir)}: built-in dataset has no train file`);
    const labelsFile = join(dir, 'labels.txt');
    return {
      name: cfg.name,
      train,
      dev: splitFile(dir, 'dev'),
      test: splitFile(dir, 'test'),
      labelsFile: existsSync(labelsFile) ? display(labelsFile) : undefined,
    };
  }
  if (cfg.train_file === undefined) {
    if (cfg.name !== undefined) datasetDir(cfg.name); // throws "unknown dataset" with the known names
    throw new GtaError(`data: set name (one of: ${BUILTIN_DATASETS.join(', ')}) or train_file`);
  }
  const name = cfg.name ?? basename(cfg.train_file).replace(/(\.(csv|tsv|jsonl))?(\.gz)?$/i, '');
  return { name, train: cfg.train_file, dev: cfg.dev_file, test: cfg.test_file };
}

/** The first `<split>.<ext>` present in a built-in folder (all ship .csv.gz today). */
export function splitFile(dir: string, split: string): string | undefined {
  for (const ext of ['csv.gz', 'csv', 'tsv.gz', 'tsv', 'jsonl.gz', 'jsonl']) {
    const p = join(dir, `${split}.${ext}`);
    if (existsSync(p)) return display(p);
  }
  return undefined;
}

/** A path relative to the current directory when it lies below it: shorter, still clickable. */
function display(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}

/** Pull text and label out of every row, checking the columns exist and the values are usable. */
function extract(t: Table, cfg: Pick<DataConfig, 'text_column' | 'label_column'>): RawExample[] {
  const { text_column: textCol, label_column: labelCol } = cfg;
  if (t.format !== 'jsonl') {
    for (const col of [textCol, labelCol]) {
      const n = t.columns.filter((c) => c === col).length;
      if (n === 0) throw atLine(t.file, t.headerLine, `no column '${col}' (columns: ${t.columns.join(', ')})`);
      if (n > 1) throw atLine(t.file, t.headerLine, `column '${col}' appears ${n} times`);
    }
  }
  return t.rows.map((row) => {
    const cell = (col: string): string => {
      const v = row.values[col];
      if (v === undefined) {
        throw atLine(t.file, row.line, `no column '${col}' (columns: ${Object.keys(row.values).join(', ')})`);
      }
      // JSONL may hold numbers (e.g. label 3); anything else is not a usable text or label.
      if (typeof v === 'number') return String(v);
      if (typeof v !== 'string') throw atLine(t.file, row.line, `column '${col}' must be a string or number, got ${JSON.stringify(v)}`);
      return v;
    };
    const text = cell(textCol);
    if (text.trim() === '') throw atLine(t.file, row.line, 'empty text');
    // Stray spaces around a class name ("positive ") are never meaningful; spaces inside are ("very positive").
    const label = cell(labelCol).trim();
    if (label === '') throw atLine(t.file, row.line, 'empty label');
    return { text, label, line: row.line, row: row.values };
  });
}

/**
 * Classes a dataset may have. Every evaluation scores each example against every label (and label
 * scoring compares labels pairwise), so tens of thousands of labels end in an out-of-memory abort
 * mid-run; that many distinct labels is almost always the wrong column (an id, the text itself).
 */
export const MAX_LABELS = 1000;

function checkLabelCount(n: number, where: string, column: string): void {
  if (n > MAX_LABELS) {
    throw new GtaError(`${where}: ${n} distinct labels; at most ${MAX_LABELS} classes are supported (is data.label_column '${column}' the label column?)`);
  }
}

/** A label that reads as a class index: 0, 1, 2... (JSONL numbers arrive here as their decimal string). */
const CLASS_INDEX = /^(0|[1-9]\d*)$/;

/**
 * Each raw label is a name of the list, or (with `indices`, when the list was given) an integer index
 * into it: many datasets store classes as 0, 1, ... An exact name always wins, so a list of numeric
 * names (labels: ["1", "2", "5"] for star ratings) keeps meaning names; only other integers are indices.
 */
function toExamples(raw: RawExample[], file: string, labels: string[], index: Map<string, number>, indices: boolean): Example[] {
  return raw.map((r) => {
    let label = index.get(r.label);
    if (label === undefined && indices && CLASS_INDEX.test(r.label)) {
      const i = Number(r.label);
      if (i >= labels.length) {
        throw atLine(file, r.line, `label ${r.label} is not a class index (0 to ${labels.length - 1}: ${listNames(labels)}) nor one of the names`);
      }
      label = i;
    }
    if (label === undefined) throw atLine(file, r.line, `label '${r.label}' is not one of: ${listNames(labels)}`);
    const ex = { text: r.text, label };
    ROWS.set(ex, r.row);
    return ex;
  });
}

/** At most 30 names, so a big label set still gives a one-line message. */
function listNames(labels: string[]): string {
  const shown = labels.slice(0, 30).join(', ');
  return labels.length > 30 ? `${shown}, ... (${labels.length} in all)` : shown;
}

async function readLabelsFile(file: string): Promise<string[]> {
  const text = (await readRegularFile(file)).toString('utf8');
  return checkLabelList(text.split(/\r?\n/), file);
}

/** Trim, drop blanks, and refuse an empty or repeated list: indices must be unambiguous. */
function checkLabelList(list: string[], where: string): string[] {
  const labels = list.map((l) => l.trim()).filter((l) => l !== '');
  if (labels.length === 0) throw new GtaError(`${where}: no labels`);
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup !== undefined) throw new GtaError(`${where}: label '${dup}' is listed twice`);
  return labels;
}

/**
 * Sorted unique train labels. Numeric names sort as numbers (2 before 10); otherwise by code point, which
 * unlike localeCompare gives the same order on every machine, so indices are stable across hosts.
 * Integers from 0 up (0, 1, ...) are refused: they are almost surely class indices whose names the file
 * lacks, and a model trained on names learns more (the base model knows "positive", not "1").
 */
function inferLabels(train: RawExample[], file: string, column: string): string[] {
  const names = [...new Set(train.map((r) => r.label))];
  checkLabelCount(names.length, file, column);
  if (names.every((n) => CLASS_INDEX.test(n)) && names.includes('0')) {
    // a loop, not Math.max(...names): a spread of 200,000 arguments overflows the stack
    const k = names.reduce((m, n) => Math.max(m, Number(n)), 0) + 1;
    const asNames = Array.from({ length: Math.min(k, 3) }, (_, i) => `"${i}"`).join(', ');
    throw new GtaError(
      `${file}: labels look like class indices (0 to ${k - 1}); give data.labels: [names in index order] (or data.labels: [${asNames}${k > 3 ? ', ...' : ''}] to keep the numbers as names)`,
    );
  }
  if (names.every((n) => /^-?\d+(\.\d+)?$/.test(n))) return names.sort((a, b) => Number(a) - Number(b));
  return names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Stratified hold-out: round(fraction * count) examples of each class go to dev, chosen by a seeded
 * shuffle, but always leaving at least one in train. Both parts keep the file's order.
 */
export function carveDev(
  examples: Example[],
  numLabels: number,
  fraction: number,
  rng: Rng,
): { train: Example[]; dev: Example[] } {
  const byLabel: number[][] = Array.from({ length: numLabels }, () => []);
  examples.forEach((e, i) => byLabel[e.label].push(i));
  const inDev = new Uint8Array(examples.length);
  for (const idx of byLabel) {
    rng.shuffle(idx);
    const k = Math.min(Math.round(idx.length * fraction), idx.length - 1);
    for (let j = 0; j < k; j++) inDev[idx[j]] = 1;
  }
  return { train: examples.filter((_, i) => !inDev[i]), dev: examples.filter((_, i) => inDev[i]) };
}

/**
 * A seeded random subset of at most `max` items, in their original order. The subset of size k is a
 * prefix of the same shuffle as the one of size k+1, so raising the cap only adds examples.
 */
export function subset<T>(items: T[], max: number | undefined, rng: Rng): T[] {
  if (max === undefined || items.length <= max) return items;
  const order = rng.shuffle(items.map((_, i) => i));
  return order
    .slice(0, max)
    .sort((a, b) => a - b)
    .map((i) => items[i]);
}
