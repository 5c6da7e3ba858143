/** What `--resume DIR|latest` starts from, for train and pretrain alike; nothing in the run directory changes yet. */
import type { z } from 'zod';
import { loadConfig } from '../config/load.js';
import { readTrainerState } from '../model/checkpoint.js';
import { RunDir, RUN_FILES } from '../run/run_dir.js';

export function openResume<S extends z.ZodType>(arg: string, command: 'train' | 'pretrain', schema: S, overrides: string[]): { run: RunDir; resumeFrom: string; config: z.infer<S>; step: number } {
  const run = RunDir.resumable(arg, command);
  const resumeFrom = run.checkpoint('latest');
  const { config } = loadConfig(schema, run.file(RUN_FILES.config), overrides);
  return { run, resumeFrom, config, step: readTrainerState(resumeFrom).step };
}
