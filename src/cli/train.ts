/** `gta train --config FILE`: one fine-tuning run, from config to summary.json. */
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema } from '../config/schema.js';
import { provenance, RunDir } from '../report/run_dir.js';
import { finetune } from '../train/finetune.js';
import { prepare } from '../train/setup.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { stopOnSignals } from './signals.js';

export interface TrainArgs {
  config: string;
  set: string[];
  backend?: string;
  logLevel: string;
}

export async function trainCommand(a: TrainArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  const overrides = a.backend ? [...a.set, `backend=${a.backend}`] : a.set;
  const { config, resolvedYaml } = loadConfig(TrainConfigSchema, a.config, overrides);
  const prepared = await prepare(config, log);
  const run = RunDir.create(config.output_dir, config.name);
  run.writeFile('config.resolved.yaml', resolvedYaml);
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
  const signals = stopOnSignals((s) => log.warn(`${s}: stopping after this step (again to quit at once)`));
  try {
    const { summary } = await finetune(config, prepared, run, log, signals.requested);
    run.writeJson('summary.json', summary);
    if (summary.status === 'interrupted') {
      run.setStatus('interrupted', { step: summary.steps });
      throw new GtaError(`interrupted at step ${summary.steps}; the latest checkpoint is in ${run.file('checkpoints/latest')}`, 130);
    }
    run.setStatus('finished', { finished: new Date().toISOString() });
    const f = summary.final as { split: string; accuracy: number; f1_weighted: number; invalid_rate: number };
    process.stdout.write(
      `${run.dir}\n${f.split}: accuracy ${f.accuracy.toFixed(4)}  f1_weighted ${f.f1_weighted.toFixed(4)}  invalid ${f.invalid_rate.toFixed(4)}  (${summary.steps} steps, ${summary.wall_time_s} s)\n`,
    );
  } catch (e) {
    if (!(e instanceof GtaError && e.exitCode === 130)) run.setStatus('failed', { error: (e as Error).message });
    throw e;
  } finally {
    signals.dispose();
  }
}
