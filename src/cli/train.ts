/** `gta train --config FILE` (one fine-tuning run) and `gta train --resume DIR|latest` (continue one). */
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema, type TrainConfig } from '../config/schema.js';
import { markFailed, provenance, RunDir, runStatus } from '../report/run_dir.js';
import { finetune } from '../train/finetune.js';
import { prepare } from '../train/setup.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { stopOnSignals } from './signals.js';

export interface TrainArgs {
  config?: string;
  resume?: string;
  /** Exact run directory to create (sweeps name their runs); default: <output_dir>/<name>-<time>. */
  runDir?: string;
  set: string[];
  backend?: string;
  logLevel: string;
}

export async function trainCommand(a: TrainArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  const overrides = a.backend ? [...a.set, `backend=${a.backend}`] : a.set;
  if (a.resume !== undefined && a.config !== undefined) throw new GtaError('give --config (a new run) or --resume (continue one), not both');
  if (a.resume === undefined && a.config === undefined) throw new GtaError('gta train needs --config FILE (or --resume RUN_DIR|latest)');
  let run: RunDir;
  let config: TrainConfig;
  let resumeFrom: string | undefined;
  let prepared;
  if (a.resume !== undefined) {
    const dir = resolveResume(a.resume);
    resumeFrom = path.join(dir, 'checkpoints', 'latest');
    if (!fs.existsSync(path.join(resumeFrom, 'trainer_state.json'))) throw new GtaError(`${dir}: has no checkpoint to resume from (${resumeFrom})`);
    ({ config } = loadConfig(TrainConfigSchema, path.join(dir, 'config.resolved.yaml'), overrides));
    prepared = await prepare(config, log, resumeFrom);
    run = RunDir.open(dir);
    const step = (JSON.parse(fs.readFileSync(path.join(resumeFrom, 'trainer_state.json'), 'utf8')) as { step: number }).step;
    rewindTo(run, step);
    const prev = run.readJson<{ resumes?: unknown[] }>('run.json');
    run.setStatus('running', { resumes: [...(prev.resumes ?? []), { from_step: step, at: new Date().toISOString(), overrides, command: process.argv.slice(1) }] });
    log.info({ run: run.dir, step }, 'resuming run');
  } else {
    const loaded = loadConfig(TrainConfigSchema, a.config!, overrides);
    config = loaded.config;
    prepared = await prepare(config, log);
    run = a.runDir ? RunDir.createAt(a.runDir) : RunDir.create(config.output_dir, config.name);
    run.writeFile('config.resolved.yaml', loaded.resolvedYaml);
    run.writeJson('run.json', {
      status: 'running',
      mode: config.mode,
      seed: config.seed,
      config_file: a.config,
      overrides,
      backend: prepared.backend,
      init: prepared.init,
      model: { params: prepared.model.numParams, arch: prepared.model.arch },
      dataset: { name: prepared.data.name, labels: prepared.data.labels, sizes: { train: prepared.data.train.length, dev: prepared.data.dev.length, test: prepared.data.test.length }, dev_source: prepared.data.devSource },
      started: new Date().toISOString(),
      ...provenance(),
    });
    log.info({ run: run.dir }, 'run directory');
  }
  const signals = stopOnSignals((s) => log.warn(`${s}: stopping after this step (again to quit at once)`));
  try {
    const { summary } = await finetune(config, prepared, run, log, signals.requested, resumeFrom);
    run.writeJson('summary.json', summary);
    if (summary.status === 'interrupted') {
      run.setStatus('interrupted', { step: summary.steps });
      throw new GtaError(`interrupted at step ${summary.steps}; continue with: gta train --resume ${run.dir}`, 130);
    }
    run.setStatus('finished', { finished: new Date().toISOString() });
    const f = summary.final as { split: string; accuracy: number; f1_weighted: number; invalid_rate: number };
    process.stdout.write(
      `${run.dir}\n${f.split}: accuracy ${f.accuracy.toFixed(4)}  f1_weighted ${f.f1_weighted.toFixed(4)}  invalid ${f.invalid_rate.toFixed(4)}  (${summary.steps} steps, ${summary.wall_time_s} s)\n`,
    );
  } catch (e) {
    if (!(e instanceof GtaError && e.exitCode === 130)) markFailed(run, e);
    throw e;
  } finally {
    signals.dispose();
  }
}

/** A run directory, or with 'latest' the newest unfinished one under ./runs. */
function resolveResume(arg: string): string {
  if (arg !== 'latest') {
    if (!fs.existsSync(path.join(arg, 'run.json'))) throw new GtaError(`${arg}: not a gta run directory (no run.json)`);
    return arg;
  }
  const root = 'runs';
  const candidates = (fs.existsSync(root) ? fs.readdirSync(root) : [])
    .map((d) => path.join(root, d))
    .filter((d) => fs.existsSync(path.join(d, 'run.json')) && fs.existsSync(path.join(d, 'checkpoints', 'latest')))
    .filter((d) => runStatus(d) !== 'finished')
    .sort((x, y) => fs.statSync(path.join(y, 'run.json')).mtimeMs - fs.statSync(path.join(x, 'run.json')).mtimeMs);
  if (candidates.length === 0) throw new GtaError(`${root}: no unfinished run with a checkpoint to resume`);
  return candidates[0];
}

/** Drops what was written after the checkpoint's step, so no step appears twice after a resume. */
function rewindTo(run: RunDir, step: number): void {
  for (const name of ['metrics.jsonl', 'samples.jsonl']) {
    const file = run.file(name);
    if (!fs.existsSync(file)) continue;
    const kept = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .filter((l) => {
        try {
          return (JSON.parse(l) as { step: number }).step <= step;
        } catch {
          return false; // a line cut short by the crash
        }
      });
    run.writeFile(name, kept.map((l) => l + '\n').join(''));
  }
  for (const name of ['summary.json', 'predictions.jsonl']) fs.rmSync(run.file(name), { force: true });
}
