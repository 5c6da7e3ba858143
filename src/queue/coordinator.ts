/**
 * The queue executor: each sweep run becomes a BullMQ job that a `gta worker` anywhere pulls. Job ids
 * are the sweep's key and the run's name, so a coordinator started again on the same sweep finds the
 * jobs already there (waiting, running, or finished while it was away) instead of adding them twice.
 * It asks Redis about its jobs every second (a poll survives a Redis restart without bookkeeping),
 * shows the running ones' steps, and as a job finishes either checks its run in the shared sweep
 * folder or writes the files the job returned into it; then it removes the job, since the sweep folder
 * is now the record.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Job, Queue } from 'bullmq';
import { RUN_FILES, runStatus } from '../run/run_dir.js';
import { configDifference, runConfigHash } from '../run/config_identity.js';
import { lockRunDir } from '../run/run_lock.js';
import { LOCK_DIR } from '../util/folder_lock.js';
import type { Logger } from '../util/log.js';
import type { SweepExecutor, SweepOutcome, SweepRun } from '../compare/sweep.js';
import { jobId, RunResultSchema, unpackFile, type RunJob, type RunResult } from './job.js';
import { checkConnection, connection, describeError, QUEUE_NAME, QUEUE_PREFIX, type RedisTarget } from './redis.js';

export interface QueueSweep {
  target: RedisTarget;
  /** The sweep's key (src/queue/job.ts sweepKey). */
  key: string;
  /** The sweep folder, when workers write it themselves (shared storage at the same path). */
  sharedDir?: string;
}

/** A job that fails this way is tried again by the next worker, a few times (a machine-specific crash). */
const ATTEMPTS = 3;
const POLL_MS = 1000;

export class QueueExecutor implements SweepExecutor {
  private readonly steps = new Map<SweepRun, number>();

  constructor(
    private readonly sweep: QueueSweep,
    private readonly log: Logger,
  ) {}

  running(): { run: SweepRun; step: number }[] {
    return [...this.steps].map(([run, step]) => ({ run, step }));
  }

  async execute(runs: SweepRun[], done: (o: SweepOutcome) => void): Promise<void> {
    const { target } = this.sweep;
    await checkConnection(target);
    const queue = new Queue(QUEUE_NAME, { connection: connection(target), prefix: QUEUE_PREFIX });
    let lastWarn = 0;
    const warn = (e: unknown) => {
      if (Date.now() - lastWarn < 10_000) return;
      lastWarn = Date.now();
      this.log.warn({ queue: target.shown, error: describeError(e, target) }, 'queue unavailable; retrying');
    };
    queue.on('error', warn);
    try {
      const pending = new Map<string, { run: SweepRun; payload: RunJob }>();
      for (const run of runs) {
        const payload = this.payload(run);
        const id = jobId(this.sweep.key, payload.run);
        await this.submit(queue, id, payload);
        pending.set(id, { run, payload });
      }
      this.log.info({ queue: target.shown, jobs: pending.size, sweep: this.sweep.key }, 'jobs queued; waiting for workers (gta worker --queue ...)');
      while (pending.size) {
        for (const [id, { run, payload }] of pending) {
          let outcome: SweepOutcome | undefined;
          try {
            outcome = await this.check(queue, id, run, payload);
          } catch (e) {
            warn(e);
            break;
          }
          if (!outcome) continue;
          pending.delete(id);
          this.steps.delete(run);
          done(outcome);
        }
        if (pending.size) await new Promise((r) => setTimeout(r, POLL_MS));
      }
    } finally {
      await queue.close();
    }
  }

  /** The job of one run: its config file's text and the overrides, as `gta train --config --set` would get them. */
  private payload(run: SweepRun): RunJob {
    return {
      v: 1,
      sweep: this.sweep.key,
      run: path.basename(run.dir),
      config_file: run.config,
      config_text: fs.readFileSync(run.config, 'utf8'),
      overrides: run.overrides,
      ...(this.sweep.sharedDir ? { shared_dir: path.resolve(this.sweep.sharedDir) } : {}),
    };
  }

  /**
   * Adds the run's job unless it is there already. One left by an earlier coordinator with another
   * payload (the config was edited since) is replaced, unless a worker is running it; one that failed
   * is tried again, as a local sweep run again tries its failed runs again.
   */
  private async submit(queue: Queue, id: string, payload: RunJob): Promise<void> {
    const existing = await Job.fromId(queue, id);
    if (existing) {
      const state = await existing.getState();
      if (JSON.stringify(existing.data) === JSON.stringify(payload)) {
        if (state === 'failed') await existing.retry('failed');
        return;
      }
      if (state === 'active') {
        this.log.warn({ job: id }, 'a worker is running this job with an older payload; its result is used');
        return;
      }
      await existing.remove();
    }
    await queue.add('train', payload, { jobId: id, attempts: ATTEMPTS, backoff: { type: 'exponential', delay: 5000 }, removeOnComplete: false, removeOnFail: false });
  }

  /** The run's outcome once its job has ended, else undefined (and its step noted when running). */
  private async check(queue: Queue, id: string, run: SweepRun, payload: RunJob): Promise<SweepOutcome | undefined> {
    const state = await queue.getJobState(id);
    if (state === 'unknown') {
      // gone from Redis (one restarted without appendonly, or flushed): added again, so no run is lost
      this.log.warn({ job: id }, 'job missing from the queue; adding it again');
      await this.submit(queue, id, payload);
      return undefined;
    }
    if (state !== 'completed' && state !== 'failed') {
      const job = state === 'active' ? await Job.fromId(queue, id) : undefined;
      const step = (job?.progress as { step?: number } | undefined)?.step;
      if (state === 'active') this.steps.set(run, typeof step === 'number' ? step : 0);
      else this.steps.delete(run);
      return undefined;
    }
    const job = await Job.fromId(queue, id);
    if (!job) return undefined;
    if (state === 'failed') return { run, action: 'trained', ok: false, error: job.failedReason || 'failed' };
    const parsed = RunResultSchema.safeParse(job.returnvalue);
    if (!parsed.success || parsed.data.run !== payload.run) return { run, action: 'trained', ok: false, error: `job ${id}: the worker's result is not a gta run result` };
    const result = parsed.data;
    if (result.files) await writeRun(run.dir, result);
    if (run.configHash !== undefined && runStatus(run.dir) === 'finished' && runConfigHash(run.dir) !== run.configHash) {
      // a worker that ran an older payload (the config was edited while it ran): not this sweep's run
      const differs = configDifference(run.dir, run.resolved!);
      if (result.files) fs.rmSync(run.dir, { recursive: true, force: true });
      await job.remove();
      return { run, action: result.action, ok: false, error: `${run.dir}: worker ${result.worker} returned a run made with another config (${differs})` };
    }
    if (runStatus(run.dir) !== 'finished') return { run, action: result.action, ok: false, error: `${run.dir}: worker ${result.worker} finished the run but it is not finished here (is output_dir on storage the workers share, at the same path?)` };
    await job.remove();
    return { run, action: result.action, ok: true };
  }
}

/**
 * Writes a finished run's files (returned by its job) into its directory in the sweep folder, under the
 * run directory's lock; run.json last, so a crash in between leaves a run that does not say finished.
 * A run already finished there (a job completed twice) is left as it is.
 */
async function writeRun(dir: string, result: RunResult): Promise<void> {
  if (runStatus(dir) === 'finished') return;
  const release = await lockRunDir(dir, 'gta compare-baselines (writing a run a worker finished)');
  try {
    for (const entry of fs.readdirSync(dir)) if (entry !== LOCK_DIR) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    const files = Object.entries(result.files ?? {}).sort(([a], [b]) => Number(a === RUN_FILES.info) - Number(b === RUN_FILES.info));
    for (const [name, content] of files) {
      const target = path.join(dir, name);
      const tmp = `${target}.tmp-${process.pid}`;
      fs.writeFileSync(tmp, unpackFile(content!));
      fs.renameSync(tmp, target);
    }
  } finally {
    await release();
  }
}
