/**
 * How many threads the torch backend uses on the CPU, and whether OpenMP's idle threads spin.
 *
 * OpenMP threads that spin-wait between parallel regions turn a busy machine into a slow one: on a
 * 2-vCPU EPYC a GTA step took 0.73 s at 2 spinning threads against 0.25 s at 1, and on a 2-vCPU Xeon
 * the calibration workload below took 879 ms spinning against 68 ms passive while one other process
 * ran (and 5-10% less than passive on an idle machine). So idle threads sleep (OMP_WAIT_POLICY=PASSIVE,
 * set before libgomp loads) unless OMP_WAIT_POLICY says otherwise, and the thread count is measured
 * once per machine: a short workload of the kind training runs (small matrix products, many tiny
 * operators, host reads) in a child process per count, for large work (LM and SFT steps) and small
 * work (rollouts and RL updates) apart: on the 2-vCPU Xeon two passive threads made an LM-like step
 * 1.4x faster but a GTA step 15% slower. The result is cached in the user's cache folder, keyed by
 * CPU model, core count and libtorch version, and logged with the backend. How busy the machine was is
 * measured directly around the calibration (busy_probe.ts: other processes' CPU time, not the lagging
 * load average): a measurement taken while others were busy is used but not cached, and a cached choice
 * its own numbers contradict (or one cached without that measure) is measured again. GTA_THREADS sets the large-work count; with idle
 * threads sleeping, small work then runs on one (at 2 passive threads a rollout took 74 ms against 38),
 * except for its big matrix products and fused passes, which get the large count (BigWork and the
 * split pass in native/: an RL step 100 -> 84 ms on the 2-vCPU Xeon).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { otherProcesses, type BusyProbe } from './busy_probe.js';

export type WaitPolicy = 'ACTIVE' | 'PASSIVE';

/**
 * The two kinds of work the calibration times: `large`, a step of big products (LM and SFT steps);
 * `small`, many operators on a few thousand rows (rollouts and RL updates, where waking threads costs
 * more than a second core gives back on a small machine).
 */
export type Workload = 'large' | 'small';

export interface ThreadChoice {
  /** Threads for large work (the backend's default count). */
  threads: number;
  /** Threads for small work (smallWork in src/backend/select.ts: rollouts and RL updates). */
  small: number;
  waitPolicy: WaitPolicy;
  /** Where the choice came from. */
  source: 'GTA_THREADS' | 'measured' | 'cached' | 'one core';
  /** Milliseconds of each calibration workload per thread count (the best of two rounds), when measured. */
  measured?: Record<Workload, Record<string, number>>;
  /** Cores other processes used while it was measured (at BUSY_OTHERS or more, not cached). */
  others?: number;
}

interface CacheEntry {
  threads: number;
  small: number;
  waitPolicy: WaitPolicy;
  measured: Record<Workload, Record<string, number>>;
  at: string;
  /** The 1-minute load average when it was measured (absent in caches written before it was kept). */
  load?: number;
  /** Cores other processes used during the measurement (busy_probe.ts; absent in caches written before). */
  others?: number;
}

/**
 * Other processes using this many cores on average during a calibration make it a busy machine's
 * measurement: used by the process that took it, never cached.
 */
export const BUSY_OTHERS = 0.25;

/** Small work takes more threads only when they are this much faster: its choice flipped on noise. */
const SMALL_MARGIN = 1.1;
const LARGE_MARGIN = 1.03;

/**
 * A machine with another process busy on it (load average 1 or more) measures the counts that suit a
 * busy machine: 1 thread on 2 cores, where an idle one gains 1.5x from 2. Such a measurement is kept,
 * and measured again by the first process that finds the machine idle (below 0.5).
 */
const BUSY_LOAD = 1;
const IDLE_LOAD = 0.5;

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

/** OMP_WAIT_POLICY as the environment sets it, else PASSIVE (idle threads sleep). */
export function ompWaitPolicy(): WaitPolicy {
  return (process.env.OMP_WAIT_POLICY?.toUpperCase() as WaitPolicy | undefined) ?? 'PASSIVE';
}

/**
 * The thread counts and wait policy for this process. Call before the addon loads (the wait policy
 * must be in the environment when libgomp starts); `libtorch` is the version the addon was built
 * against (for the cache key).
 */
export function chooseThreads(libtorch: string, load = os.loadavg()[0], probe: BusyProbe = otherProcesses, measure: Calibrate = calibrate): ThreadChoice {
  const cores = os.availableParallelism();
  const waitPolicy = ompWaitPolicy();
  const fixed = Number(process.env.GTA_THREADS);
  // small work's own operators gain nothing from sleeping threads (its big products and passes still get them: native/gta_arch.h BigWork)
  if (fixed > 0) return { threads: fixed, small: waitPolicy === 'PASSIVE' ? 1 : fixed, waitPolicy, source: 'GTA_THREADS' };
  if (cores === 1) return { threads: 1, small: 1, waitPolicy, source: 'one core' };
  const key = `${machineKey(libtorch)} | ${waitPolicy}`;
  const cached = readCache()[key];
  const stale = cached !== undefined && (cached.load ?? BUSY_LOAD) >= BUSY_LOAD && load < IDLE_LOAD;
  if (cached?.small && !stale && !contradicted(cached)) return { threads: cached.threads, small: cached.small, waitPolicy, source: 'cached', measured: cached.measured };
  const busy = probe();
  const counts = cores <= 4 ? Array.from({ length: cores }, (_, i) => i + 1) : [1, Math.ceil(cores / 2), cores];
  const measured: Record<Workload, Record<string, number>> = { large: {}, small: {} };
  // two interleaved rounds, the best of each kept: a process that was briefly busy on the machine
  // should not decide the count for good
  for (let round = 0; round < 2; round++) {
    for (const n of counts) {
      const ms = measure(n, waitPolicy);
      for (const w of ['large', 'small'] as const) {
        if (Number.isFinite(ms[w])) measured[w][String(n)] = Math.min(measured[w][String(n)] ?? Infinity, Math.round(ms[w] * 10) / 10);
      }
    }
  }
  const others = busy();
  const threads = fewestNearBest(measured.large, LARGE_MARGIN);
  const small = fewestNearBest(measured.small, SMALL_MARGIN);
  if (threads === undefined || small === undefined) return { threads: 1, small: 1, waitPolicy, source: 'measured', measured };
  const underLoad = others !== undefined && others >= BUSY_OTHERS;
  // a busy machine's counts serve this process only: the next one measures again
  if (!underLoad) writeCache(key, { threads, small, waitPolicy, measured, at: new Date().toISOString(), load: Math.round(load * 100) / 100, ...(others !== undefined ? { others: Math.round(others * 100) / 100 } : {}) });
  return { threads, small, waitPolicy, source: 'measured', measured, ...(others !== undefined ? { others: Math.round(others * 100) / 100 } : {}) };
}

/**
 * A cached choice its own measurements do not support under today's rule (a cache from before the
 * small-work margin, or one written by hand), or one taken without a direct measure of how busy the
 * machine was (cached by a version that trusted the load average): measured again.
 */
function contradicted(entry: CacheEntry): boolean {
  if (entry.others === undefined) return true;
  return fewestNearBest(entry.measured.large, LARGE_MARGIN) !== entry.threads || fewestNearBest(entry.measured.small, SMALL_MARGIN) !== entry.small;
}

/** The smallest count within `margin` of the best time: more threads cost the other processes on the machine. */
export function fewestNearBest(ms: Record<string, number>, margin: number): number | undefined {
  const entries = Object.entries(ms).map(([n, t]) => [Number(n), t] as const);
  if (entries.length === 0) return undefined;
  const best = Math.min(...entries.map(([, t]) => t));
  return Math.min(...entries.filter(([, t]) => t <= best * margin).map(([n]) => n));
}

/** Times both workloads at one setting: calibrate below, or given numbers where only the caching rules are under test. */
export type Calibrate = (threads: number, policy: WaitPolicy) => Record<Workload, number>;

/** Milliseconds of both workloads in calibrate.ts at one setting (Infinity when the child fails). */
function calibrate(threads: number, policy: WaitPolicy): Record<Workload, number> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'calibrate.js');
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, GTA_THREADS: String(threads), OMP_WAIT_POLICY: policy } });
  const [large, small] = (r.stdout?.trim().split('\n').pop() ?? '').split(' ').map(Number);
  const ok = (ms: number) => (r.status === 0 && ms > 0 ? ms : Infinity);
  return { large: ok(large), small: ok(small) };
}
