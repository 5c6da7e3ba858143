/**
 * How many threads the torch backend uses on the CPU, and whether OpenMP's idle threads spin.
 *
 * OpenMP threads that spin-wait between parallel regions turn a busy machine into a slow one: on a
 * 2-vCPU EPYC a GTA step took 0.73 s at 2 spinning threads against 0.25 s at 1, and on a 2-vCPU Xeon
 * the calibration workload below took 879 ms spinning against 68 ms passive while one other process
 * ran (and 5-10% less than passive on an idle machine). So idle threads sleep (OMP_WAIT_POLICY=PASSIVE,
 * set before libgomp loads) unless OMP_WAIT_POLICY says otherwise, and the thread count is measured
 * once per machine: a short workload of the kind training runs (small matrix products, many tiny
 * operators, host reads) in a child process per count. The result is cached in the user's cache
 * folder, keyed by CPU model, core count and libtorch version, and logged with the backend.
 * GTA_THREADS sets the count.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type WaitPolicy = 'ACTIVE' | 'PASSIVE';

export interface ThreadChoice {
  threads: number;
  waitPolicy: WaitPolicy;
  /** Where the choice came from. */
  source: 'GTA_THREADS' | 'measured' | 'cached' | 'one core';
  /** Milliseconds of the calibration workload per thread count, when measured. */
  measured?: Record<string, number>;
}

interface CacheEntry {
  threads: number;
  waitPolicy: WaitPolicy;
  measured: Record<string, number>;
  at: string;
}

/** The machine, as the cache keys it. */
function machineKey(libtorch: string): string {
  return `${os.cpus()[0]?.model.trim() ?? 'unknown cpu'} | ${os.availableParallelism()} cores | libtorch ${libtorch}`;
}

export function cacheFile(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'gta', 'threads.json');
}

function readCache(): Record<string, CacheEntry> {
  try {
    return JSON.parse(fs.readFileSync(cacheFile(), 'utf8')) as Record<string, CacheEntry>;
  } catch {
    return {};
  }
}

function writeCache(key: string, entry: CacheEntry): void {
  const file = cacheFile();
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify({ ...readCache(), [key]: entry }, null, 2) + '\n');
    fs.renameSync(tmp, file);
  } catch {
    // an unwritable cache folder only means measuring again next time
  }
}

/**
 * The thread count and wait policy for this process. Call before the addon loads (the wait policy
 * must be in the environment when libgomp starts); `libtorch` is the version the addon was built
 * against (for the cache key).
 */
export function chooseThreads(libtorch: string): ThreadChoice {
  const cores = os.availableParallelism();
  const waitPolicy = (process.env.OMP_WAIT_POLICY?.toUpperCase() as WaitPolicy | undefined) ?? 'PASSIVE';
  const fixed = Number(process.env.GTA_THREADS);
  if (fixed > 0) return { threads: fixed, waitPolicy, source: 'GTA_THREADS' };
  if (cores === 1) return { threads: 1, waitPolicy, source: 'one core' };
  const key = `${machineKey(libtorch)} | ${waitPolicy}`;
  const cached = readCache()[key];
  if (cached) return { threads: cached.threads, waitPolicy, source: 'cached', measured: cached.measured };
  const counts = cores <= 4 ? Array.from({ length: cores }, (_, i) => i + 1) : [1, Math.ceil(cores / 2), cores];
  const measured: Record<string, number> = {};
  let best = 1;
  let bestMs = Infinity;
  for (const n of counts) {
    const ms = calibrate(n, waitPolicy);
    if (!Number.isFinite(ms)) continue;
    measured[String(n)] = Math.round(ms * 10) / 10;
    // more threads only when clearly (3%) faster: they cost the other processes on the machine
    if (ms < bestMs * 0.97) {
      best = n;
      bestMs = ms;
    }
  }
  if (bestMs === Infinity) return { threads: 1, waitPolicy, source: 'measured', measured };
  writeCache(key, { threads: best, waitPolicy, measured, at: new Date().toISOString() });
  return { threads: best, waitPolicy, source: 'measured', measured };
}

/** Milliseconds of the workload in calibrate.ts at one setting (Infinity when the child fails). */
function calibrate(threads: number, policy: WaitPolicy): number {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'calibrate.js');
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, GTA_THREADS: String(threads), OMP_WAIT_POLICY: policy } });
  const ms = Number(r.stdout?.trim().split('\n').pop());
  return r.status === 0 && ms > 0 ? ms : Infinity;
}
