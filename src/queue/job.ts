/**
 * A queue job is one sweep run. Its payload is the run config's text and the overrides the sweep adds
 * (what `gta train --config FILE --set ...` gets locally), its name and, with shared storage, the sweep
 * folder; a worker validates all of it before anything runs (src/queue/worker.ts). Its result is what
 * the run left: without shared storage, the run directory's files (no checkpoints), gzipped.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { z } from 'zod';
import { RUN_FILES } from '../run/run_dir.js';
import { forbiddenPart } from '../util/key_path.js';

/** The same rule as config names (src/config/schema.ts): these become folder names on the worker. */
const folderName = z.string().max(200).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-" only').refine((s) => s !== '.' && s !== '..', 'not . or ..');

export const RunJobSchema = z
  .object({
    v: z.literal(1),
    /** The sweep's queue key (its name and a hash of where its folder is): jobs of one sweep share it. */
    sweep: folderName,
    /** The run's directory name in the sweep folder (`<dataset>-<arm>-seed<k>`). */
    run: folderName,
    /** The run config's path on the coordinator, for messages, and its text. */
    config_file: z.string().max(4096),
    config_text: z.string().max(1_000_000),
    /** `key.path=value`, as `--set` takes them: a key first, so no override can pass for an option. */
    overrides: z
      .array(
        z
          .string()
          .max(10_000)
          .regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*=/, 'key.path=value')
          .refine((o) => forbiddenPart(o.slice(0, o.indexOf('=')).split('.')) === undefined, 'no __proto__, constructor or prototype in a key path'),
      )
      .max(1000),
    /** The sweep folder, when it is on storage every worker mounts at this (absolute) path. */
    shared_dir: z.string().max(4096).refine((p) => path.isAbsolute(p), 'an absolute path').optional(),
  })
  .strict();
export type RunJob = z.infer<typeof RunJobSchema>;

/** What the coordinator takes back from a worker's job; file names outside RESULT_FILES are refused. */
export const RESULT_FILES = [RUN_FILES.config, RUN_FILES.info, RUN_FILES.metrics, RUN_FILES.summary, RUN_FILES.predictions, RUN_FILES.samples] as const;

export const RunResultSchema = z
  .object({
    run: folderName,
    action: z.enum(['trained', 'resumed', 'skipped']),
    worker: z.string(),
    /** File name to its gzipped, base64 content (absent with shared storage). */
    files: z.partialRecord(z.enum(RESULT_FILES), z.string()).optional(),
  })
  .strict();
export type RunResult = z.infer<typeof RunResultSchema>;

/** The job id: the sweep's key and the run's name, so adding a sweep's jobs again finds the ones already there. */
export function jobId(sweep: string, run: string): string {
  return `${sweep}.${run}`;
}

/** A sweep's key: its name, and a hash of its folder (shared: the path alone; else this machine's path). */
export function sweepKey(name: string, dir: string, host: string, shared: boolean): string {
  const where = shared ? path.resolve(dir) : `${host}:${path.resolve(dir)}`;
  return `${name}-${crypto.createHash('sha256').update(where).digest('hex').slice(0, 10)}`;
}

/** A finished run directory's result files, gzipped and base64-encoded. */
export function packRun(dir: string): Partial<Record<(typeof RESULT_FILES)[number], string>> {
  const files: Partial<Record<(typeof RESULT_FILES)[number], string>> = {};
  for (const name of RESULT_FILES) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) files[name] = zlib.gzipSync(fs.readFileSync(file)).toString('base64');
  }
  return files;
}

export function unpackFile(content: string): Buffer {
  return zlib.gunzipSync(Buffer.from(content, 'base64'));
}
