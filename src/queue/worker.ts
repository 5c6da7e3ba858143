/**
 * `gta worker`: pulls sweep runs from the queue and trains each in a `gta train` child process (up to
 * `jobs` at once, the cores shared out among them), so the training never blocks this process's lock
 * renewal with BullMQ. A job is checked before anything runs: its payload against RunJobSchema, its run
 * config against the same schema as a config file, and every file it reads or writes against the
 * folders this worker was started with. A worker that dies stops renewing its jobs' locks; BullMQ then
 * gives them to another worker, which resumes a shared run from its last checkpoint.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { DelayedError, UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema, type TrainConfig } from '../config/schema.js';
import { RUN_FILES, runStatus } from '../run/run_dir.js';
import { READ_ROOTS_ENV } from '../util/read_roots.js';
import { errorLine, lastStep, startChild, trainArgs } from '../compare/child.js';
import { BUSY_EXIT, LOCK_DIR } from '../util/folder_lock.js';
import { configDifference, configHash, runConfigHash } from '../run/config_identity.js';
import { lockRunDir } from '../run/run_lock.js';
import { GtaError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { repoRoot } from '../util/paths.js';
import { resolveModelFolder } from '../model/hf_cache.js';
import { rewardModulePath } from '../task/reward_plugins.js';
import { AllowedFolders } from './allowed.js';
import { packRun, RunJobSchema, type RunJob, type RunResult } from './job.js';
import { checkConnection, connection, describeError, QUEUE_NAME, QUEUE_PREFIX, type RedisTarget } from './redis.js';

export interface WorkerOptions {
  target: RedisTarget;
  /** Jobs at once, each its own child process. */
  jobs: number;
  /** Folders beyond datasets/ and checkpoints/ that jobs may read and write (shared sweep folders, data). */
  allow: string[];
  /** Where runs of sweeps without shared storage go (`<runs>/<sweep>/runs/<run>`), and the jobs' config files. */
  runs: string;
  /** How long a job's lock lasts without renewal: a dead worker's jobs go to another after about this. */
  stallSeconds: number;
  /** Trains every job on this backend instead of its config's (`gta worker --backend`). */
  backend?: string;
}

/** How soon a job whose run directory is busy (a run still stopping elsewhere) is tried again. */
const BUSY_RETRY_MS = 5000;

export async function runWorker(o: WorkerOptions, log: Logger): Promise<void> {
  await checkConnection(o.target);
  fs.mkdirSync(o.runs, { recursive: true });
  const root = repoRoot();
  const allowed = new AllowedFolders([path.join(root, 'datasets'), path.join(root, 'checkpoints')], [o.runs, ...o.allow]);
  const name = `${os.hostname()}:${process.pid}`;
  const children = new Set<ChildProcess>();
  let stopping = false;

  const processJob = async (job: Job, token?: string): Promise<RunResult> => {
    const p = checkPayload(job, log);
    const sweepDir = path.join(o.runs, p.sweep);
    const dir = p.shared_dir ? path.join(p.shared_dir, 'runs', p.run) : path.join(sweepDir, 'runs', p.run);
    const configFile = path.join(sweepDir, 'configs', `${p.run}.yaml`);
    // messages name the coordinator's config file, which is the one a person can fix
    const theirs = (msg: string) => msg.split(configFile).join(p.config_file);
    try {
      allowed.checkWrite('shared_dir', dir);
      fs.mkdirSync(path.dirname(configFile), { recursive: true });
      fs.writeFileSync(configFile, p.config_text);
      const { config } = loadConfig(TrainConfigSchema, configFile, p.overrides);
      checkPaths(config, allowed);
      // a run of this name made with another config is not this job's run: never "skipped" for it
      if (runStatus(dir) !== null && runConfigHash(dir) !== configHash(config)) {
        const differs = configDifference(dir, config);
        if (p.shared_dir) throw new GtaError(`${dir}: holds a run made with another config (${differs}); the coordinator trains it again only with --force`);
        log.warn({ job: job.id, run: p.run, worker: name, differs }, 'this worker\'s run of that name was made with another config: training it again');
        await emptyRunDir(dir);
      }
    } catch (e) {
      if (!(e instanceof GtaError)) throw e;
      if (e.exitCode === BUSY_EXIT) {
        // the old run's directory is held by a run still stopping: later, without using up an attempt
        await job.moveToDelayed(Date.now() + BUSY_RETRY_MS, token);
        throw new DelayedError();
      }
      log.warn({ job: job.id, run: p.run, worker: name, error: theirs(e.message) }, 'job refused');
      throw new UnrecoverableError(theirs(e.message));
    }
    const result = (action: RunResult['action']): RunResult => ({ run: p.run, action, worker: name, ...(p.shared_dir ? {} : { files: packRun(dir) }) });
    // completion is idempotent by run name: a job run again (Redis lost its completion, say) finds the run finished
    if (runStatus(dir) === 'finished') {
      log.info({ job: job.id, run: p.run, action: 'skipped', worker: name }, 'job done');
      return result('skipped');
    }
    const { action, args, sets } = trainArgs(dir, configFile, p.overrides);
    if (action === 'resumed') {
      // a resume reads the run's own config.resolved.yaml (on shared storage, anyone's): checked as the job's config is
      try {
        checkPaths(loadConfig(TrainConfigSchema, path.join(dir, RUN_FILES.config)).config, allowed);
      } catch (e) {
        if (!(e instanceof GtaError)) throw e;
        log.warn({ job: job.id, run: p.run, worker: name, error: e.message }, 'job refused');
        throw new UnrecoverableError(`${path.join(dir, RUN_FILES.config)}: ${e.message}`);
      }
    }
    log.info({ job: job.id, run: p.run, action, worker: name, attempt: job.attemptsMade + 1 }, 'job started');
    const started = performance.now();
    // the child checks every file where it opens it against the same folders (a link swapped in after this check leads nowhere)
    const { child, done } = startChild([...args, ...(o.backend ? ['--backend', o.backend] : []), '--log-level', 'warn'], o.jobs, { [READ_ROOTS_ENV]: JSON.stringify(allowed.readRoots()) }, sets);
    children.add(child);
    const ticker = setInterval(() => job.updateProgress({ step: lastStep(dir) }).catch(() => undefined), 2000);
    const res = await done.finally(() => {
      clearInterval(ticker);
      children.delete(child);
    });
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    if (res.code === 0) {
      log.info({ job: job.id, run: p.run, action, worker: name, seconds }, 'job done');
      return result(action);
    }
    const error = theirs(errorLine(res.stderr));
    log.warn({ job: job.id, run: p.run, action, worker: name, code: res.code, error }, 'job not done');
    if (res.code === 2) throw new UnrecoverableError(error); // bad input: the same on every worker
    if (res.code === BUSY_EXIT) {
      // its run directory is held by a run still stopping (a dead worker's child): later, without using up an attempt
      await job.moveToDelayed(Date.now() + BUSY_RETRY_MS, token);
      throw new DelayedError();
    }
    if (res.code === 130 && stopping) {
      // this worker is shutting down: the run was checkpointed; the job goes back for any worker
      await job.moveToWait(token);
      throw new WaitingError();
    }
    throw new Error(error);
  };

  const worker = new Worker(QUEUE_NAME, processJob, {
    connection: connection(o.target),
    prefix: QUEUE_PREFIX,
    concurrency: o.jobs,
    lockDuration: o.stallSeconds * 1000,
    stalledInterval: o.stallSeconds * 1000,
    // a job whose worker died is handed on a few times before it counts as failed
    maxStalledCount: 3,
    name,
    autorun: false,
  });
  let lastWarn = 0;
  worker.on('error', (e) => {
    // while Redis is away every command fails: one line every 10 s, not one per command
    if (Date.now() - lastWarn < 10_000) return;
    lastWarn = Date.now();
    log.warn({ queue: o.target.shown, error: describeError(e, o.target) }, 'queue unavailable; retrying');
  });
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    log.warn(`${signal}: stopping; running jobs are checkpointed and handed back to the queue (again to quit at once)`);
    for (const c of children) c.kill('SIGTERM');
    void worker.close();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  log.info({ queue: o.target.shown, worker: name, jobs: o.jobs, runs: o.runs, allow: o.allow }, 'worker ready');
  await worker.run();
  await worker.close();
}

/** Empties a run directory of this worker's own (under its lock: a run still stopping there makes it wait). */
async function emptyRunDir(dir: string): Promise<void> {
  const release = await lockRunDir(dir, 'gta worker (replacing a run of another config)');
  try {
    for (const entry of fs.readdirSync(dir)) if (entry !== LOCK_DIR) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  } finally {
    await release();
  }
}

/** The payload, or a job failed once: a malformed job is malformed on every worker. */
function checkPayload(job: Job, log: Logger): RunJob {
  const parsed = RunJobSchema.safeParse(job.data);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const error = `job ${job.id}: not a gta run job: ${issue.path.join('.') || '(top level)'}: ${issue.message}`;
  log.warn({ job: job.id, error }, 'job refused');
  throw new UnrecoverableError(error);
}

/** Every file the run config names is under the folders this worker may read. */
function checkPaths(config: TrainConfig, allowed: AllowedFolders): void {
  const init: unknown = config.init;
  if (typeof init !== 'string') throw new GtaError('init: this worker checks only a checkpoint path or "scratch"');
  // a hub id is read from the local Hugging Face cache: that folder must be allowed (--allow)
  if (init !== 'scratch') allowed.checkRead('init', resolveModelFolder(init).dir);
  // reward modules run code: only from this worker's own checkout or its --allow folders
  for (const r of config.rl.rewards) {
    if (r.module === undefined) continue;
    const file = rewardModulePath(r.module);
    if (!AllowedFolders.contains(repoRoot(), file)) allowed.checkRead(`rl.rewards ${r.name}: module`, file);
  }
  for (const key of ['train_file', 'dev_file', 'test_file'] as const) {
    const file = config.data[key];
    if (file !== undefined) allowed.checkRead(`data.${key}`, file);
  }
}
