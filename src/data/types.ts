/** One labelled text. `label` is an index into the owning Dataset's `labels`. */
export interface Example {
  text: string;
  label: number;
}

/** A loaded dataset: three splits sharing one label list. */
export interface Dataset {
  name: string;
  /** Class names; `Example.label` indexes this array. */
  labels: string[];
  train: Example[];
  dev: Example[];
  /** Empty when the dataset has no test split. */
  test: Example[];
  /** 'file': dev came from its own file; 'carved': held out from train (seeded, stratified). */
  devSource: 'file' | 'carved';
  /** Which files were read, by role: train, dev, test, labels (only those that exist). */
  files: Record<string, string>;
  /** Things a person should know about the data that do not stop a run (labels differing only by case). */
  warnings?: string[];
}

import type { DataConfig as FullDataConfig } from '../config/schema.js';

/**
 * What loadDataset reads: the data section of a run config (src/config/schema.ts defines it); keys
 * the loader does not need, or has its own default for, may be left out.
 */
export type DataConfig = Omit<FullDataConfig, 'format' | 'split_seed' | 'max_text_tokens'> &
  Partial<Pick<FullDataConfig, 'format' | 'split_seed' | 'max_text_tokens'>>;
