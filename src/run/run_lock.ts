/**
 * A run directory is written by one process at a time: `gta train` holds its lock (src/util/folder_lock.ts)
 * from before it changes anything there until it exits, so a second `gta train --resume` of the same
 * run, or a queue job retried while the killed worker's run is still stopping, is refused instead of
 * writing the same files at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BUSY_EXIT, LOCK_DIR, lockFolder } from '../util/folder_lock.js';
import { GtaError } from '../util/errors.js';
import { RunDir, runStatus } from './run_dir.js';

/** Locks an existing run directory for a resume (or for writing a finished run's files into it). */
export function lockRunDir(dir: string, what: string): Promise<() => Promise<void>> {
  return lockFolder(dir, what);
}

/**
 * Locks exactly `dir` for a new run: made if missing; one left by a run that stopped before its first
 * checkpoint is emptied (nothing there can be continued); a finished run, or one that can be resumed,
 * is refused. `discard` removes the folder again when the run does not get to start (bad data, say),
 * so bad input leaves no run directory behind.
 */
export async function claimRunDir(dir: string, what: string): Promise<{ release: () => Promise<void>; discard: () => Promise<void> }> {
  const release = await lockFolder(dir, what);
  const status = runStatus(dir);
  if (status === 'finished') {
    await release();
    throw new GtaError(`${dir}: holds a finished run; give another --run-dir`);
  }
  if (status !== null && new RunDir(dir).hasCheckpoint('latest')) {
    await release();
    // a retried sweep job can meet this when the run it saw without a checkpoint wrote one meanwhile: try again
    throw new GtaError(`${dir}: holds a run with a checkpoint; continue it with gta train --resume ${dir}`, BUSY_EXIT);
  }
  for (const entry of fs.readdirSync(dir)) if (entry !== LOCK_DIR) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  return {
    release,
    discard: async () => {
      await release();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
