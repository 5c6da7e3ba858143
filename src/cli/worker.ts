/** `gta worker --queue URL`: runs sweep jobs from a Redis queue until stopped (src/queue/worker.ts). */
import { parseRedisUrl } from '../queue/redis.js';
import { runWorker } from '../queue/worker.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';

export interface WorkerArgs {
  queue: string;
  jobs: number;
  allow: string[];
  runs: string;
  stallS: number;
  backend?: string;
  logLevel: string;
}

export async function workerCommand(a: WorkerArgs): Promise<void> {
  if (!(Number.isInteger(a.jobs) && a.jobs >= 1)) throw new GtaError(`--jobs must be a positive integer, got ${a.jobs}`);
  if (!(Number.isFinite(a.stallS) && a.stallS >= 1)) throw new GtaError(`--stall-s must be at least 1 second, got ${a.stallS}`);
  const log = createLogger(a.logLevel);
  await runWorker({ target: parseRedisUrl(a.queue), jobs: a.jobs, allow: a.allow, runs: a.runs, stallSeconds: a.stallS, backend: a.backend }, log);
}
