/**
 * A folder that one process at a time may write (a sweep folder, a run directory) is locked with
 * proper-lockfile: its lock is the folder `<dir>/.lock`, made with mkdir (atomic, also on NFS) and
 * touched every 30 s while held, with holder.json inside naming the holder's host, pid, command and
 * start. A lock whose holder is gone is taken over: at once when the holder ran on this host and its
 * pid is dead (a killed process), otherwise once it has not been touched for 5 minutes (the holder's
 * machine died). A live holder's lock is never taken, however long its event loop was busy.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { GtaError } from './errors.js';

export const LOCK_DIR = '.lock';
const HOLDER_FILE = 'holder.json';
/** The exit code of a command that found its folder locked by another process: try again later. */
export const BUSY_EXIT = 75;
/** Long, so that a busy holder on another machine (a long synchronous evaluation) is not mistaken for a dead one. */
const STALE_MS = 5 * 60_000;
const UPDATE_MS = 30_000;

export interface LockHolder {
  host: string;
  pid: number;
  /** What holds it, for the message the next comer gets ("gta compare-baselines"). */
  what: string;
  since: string;
}

// proper-lockfile removes its lock folder with rmdir; ours holds holder.json, so removal is recursive
const lockFs = {
  ...fs,
  rmdir: (p: string, cb: (e: NodeJS.ErrnoException | null) => void) => fs.rm(p, { recursive: true, force: true }, cb),
  rmdirSync: (p: string) => fs.rmSync(p, { recursive: true, force: true }),
};

/** Locks `dir` (made if missing) for this process until the returned release is called or the process exits. */
export async function lockFolder(dir: string, what: string): Promise<() => Promise<void>> {
  fs.mkdirSync(dir, { recursive: true });
  const lockDir = path.join(dir, LOCK_DIR);
  const before = readHolder(lockDir);
  // a holder killed on this machine: make its lock look stale, so proper-lockfile takes it over now
  if (before && before.host === os.hostname() && !alive(before.pid)) {
    try {
      fs.utimesSync(lockDir, 0, 0);
    } catch {
      // gone meanwhile
    }
  }
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, {
      realpath: false,
      lockfilePath: lockDir,
      stale: STALE_MS,
      update: UPDATE_MS,
      fs: lockFs,
      onCompromised: (e) => {
        process.stderr.write(`gta: error: ${dir}: lost its lock (${e.message}); stopping so that two processes do not write it\n`);
        process.exit(BUSY_EXIT);
      },
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
    throw new GtaError(`${dir}: in use by ${describeHolder(readHolder(lockDir))}; a lock not refreshed for ${STALE_MS / 60_000} minutes is taken over`, BUSY_EXIT);
  }
  // Writing inside the lock folder changes its mtime, which proper-lockfile checks to tell whether
  // someone else took the lock; set back the mtime it recorded.
  const { mtime } = fs.statSync(lockDir);
  const holder: LockHolder = { host: os.hostname(), pid: process.pid, what, since: new Date().toISOString() };
  fs.writeFileSync(path.join(lockDir, HOLDER_FILE), JSON.stringify(holder) + '\n');
  fs.utimesSync(lockDir, mtime, mtime);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await release();
  };
}

/** Who holds `dir`'s lock now, or null when it is free (or its holder has not written holder.json yet). */
export function folderHolder(dir: string): LockHolder | null {
  return readHolder(path.join(dir, LOCK_DIR));
}

function readHolder(lockDir: string): LockHolder | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(lockDir, HOLDER_FILE), 'utf8')) as LockHolder;
  } catch {
    return null;
  }
}

function describeHolder(h: LockHolder | null): string {
  // between the holder's mkdir and its holder.json there is nothing to read yet
  return h ? `${h.what} (pid ${h.pid} on ${h.host}, since ${h.since})` : 'another process (it is just taking the lock)';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
