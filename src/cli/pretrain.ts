/** `gta pretrain --config FILE`: trains the base LM and writes its checkpoint (and a run directory with its curves). */
import { initBackend } from '../backend/select.js';
import { loadConfig } from '../config/load.js';
import { PretrainConfigSchema } from '../config/schema.js';
import { BUILTIN_DATASETS } from '../data/registry.js';
import { markFailed, provenance, RunDir } from '../report/run_dir.js';
import { pretrain } from '../train/pretrain.js';
import { GtaError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { stopOnSignals } from './signals.js';

export async function pretrainCommand(a: { config: string; set: string[]; backend?: string; logLevel: string }): Promise<void> {
  const log = createLogger(a.logLevel);
  const overrides = a.backend ? [...a.set, `backend=${a.backend}`] : a.set;
  const { config, resolvedYaml } = loadConfig(PretrainConfigSchema, a.config, overrides);
  const unknown = config.corpus.find((n) => !BUILTIN_DATASETS.includes(n));
  if (unknown) throw new GtaError(`${a.config}: corpus: unknown dataset '${unknown}' (built-in datasets: ${BUILTIN_DATASETS.join(', ')})`);
  const backend = await initBackend(config.backend);
  log.info({ backend: backend.name, device: backend.device }, 'backend ready');
  const run = RunDir.create('runs', config.name);
  run.writeFile('config.resolved.yaml', resolvedYaml);
  run.writeJson('run.json', { status: 'running', mode: 'pretrain', seed: config.seed, config_file: a.config, overrides, backend, started: new Date().toISOString(), ...provenance() });
  const signals = stopOnSignals((s) => log.warn(`${s}: stopping after this step and saving the checkpoint`));
  try {
    const summary = await pretrain(config, run, log, signals.requested);
    run.writeJson('summary.json', summary);
    run.setStatus(summary.status as 'finished' | 'interrupted', { finished: new Date().toISOString() });
    process.stdout.write(`${summary.checkpoint}\nheld-out perplexity ${Number(summary.held_out_perplexity).toFixed(2)} after ${summary.steps} steps (${summary.wall_time_s} s); run: ${run.dir}\n`);
  } catch (e) {
    markFailed(run, e);
    throw e;
  } finally {
    signals.dispose();
  }
}
