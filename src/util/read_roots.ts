/**
 * The folders a queue job's training child may read, passed down by the worker that checked the job
 * (GTA_READ_ROOTS, a JSON list of real paths). The worker's check alone came too early: swapping an
 * allowed folder for a link to elsewhere after the check made the child read an outside file. So the
 * child checks again where it reads: a data file is checked after it is opened, by the real path of
 * the open file itself (/proc/self/fd), which no later swap can change.
 */
import fs from 'node:fs';
import path from 'node:path';
import { GtaError } from './errors.js';

export const READ_ROOTS_ENV = 'GTA_READ_ROOTS';

function roots(): string[] | undefined {
  const v = process.env[READ_ROOTS_ENV];
  if (v === undefined) return undefined;
  const parsed = JSON.parse(v) as unknown;
  if (!Array.isArray(parsed) || !parsed.every((r) => typeof r === 'string')) throw new GtaError(`${READ_ROOTS_ENV}: not a JSON list of folders`);
  return parsed as string[];
}

function inside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function check(what: string, real: string, shown: string): void {
  const allowed = roots();
  if (allowed && !allowed.some((r) => inside(real, r))) {
    throw new GtaError(`${what}: ${shown} is outside the folders this worker may read (${allowed.join(', ')}; it resolves to ${real})`);
  }
}

/** With read roots set, the open file `fd` (opened as `file`) must lie under one of them. */
export function checkOpenedFile(fd: number, file: string): void {
  if (process.env[READ_ROOTS_ENV] === undefined) return;
  let real: string;
  try {
    real = fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    real = fs.realpathSync(file); // no /proc: the path as it resolves now
  }
  check(file, real, file);
}

/** With read roots set, `p` (a checkpoint folder, say) must resolve to a place under one of them. */
export function checkReadPath(key: string, p: string): void {
  if (process.env[READ_ROOTS_ENV] === undefined) return;
  let real: string;
  try {
    real = fs.realpathSync(p);
  } catch {
    return; // missing: the reader says so
  }
  check(key, real, p);
}
