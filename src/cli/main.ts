/**
 * The gta command line. Each command lives in its own file; this one wires them into yargs and turns
 * errors into exit codes: 2 for bad input (a one-line message), 1 for anything unexpected (with stack).
 * A command's module is imported when that command runs: every `gta train` a sweep spawns would
 * otherwise load the queue's BullMQ and ioredis (0.6 s) and the other commands' code it never uses.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { GtaError } from '../util/errors.js';
import { LOG_LEVELS } from '../util/log.js';
import { stopAllProgress } from '../util/progress.js';
import { BACKEND_NAMES } from '../config/schema.js';
import { DEFAULT_CORPUS } from '../corpus/build.js';
import { SOURCE_NAMES } from '../corpus/sources.js';
import { DEFAULT_NGRAM } from '../corpus/dedup.js';

export async function main(argv: string[]): Promise<number> {
  try {
    await yargs(stdinValues(argv))
      .scriptName('gta')
      .usage('$0 <command> [options]')
      .option('log-level', { choices: LOG_LEVELS, default: 'info', describe: 'log verbosity (logs go to stderr)' })
      .option('backend', { choices: BACKEND_NAMES, describe: 'TensorFlow.js backend (overrides the config)' })
      .command(
        'train',
        'fine-tune a model as a config says, evaluate it, and write a run directory',
        (y) =>
          y
            .option('config', { type: 'string', describe: 'YAML run config' })
            .option('resume', { type: 'string', describe: "continue a run from its latest checkpoint: a run directory, or 'latest'" })
            .option('set', { type: 'string', array: true, default: [], describe: 'override a config key: --set train.steps=100' })
            .option('set-file', { type: 'string', describe: 'a JSON file holding a list of key.path=value overrides, applied before --set (how sweeps pass them)' })
            .option('nproc', { type: 'number', describe: 'data-parallel ranks on this machine (each its shard of every batch; needs the torch addon)' })
            .option('run-dir', { type: 'string', describe: 'create exactly this run directory (default: <output_dir>/<name>-<utc time>)' }),
        async (a) => {
          const { readSetFile, trainCommand } = await import('./train.js');
          return trainCommand({ config: a.config, resume: a.resume, runDir: a['run-dir'], set: [...readSetFile(a['set-file']), ...(a.set as string[])], backend: a.backend, logLevel: a['log-level'], nproc: a.nproc, argv });
        },
      )
      .command(
        'eval',
        'score a finished run (or one of its checkpoints) on a split, or on a labelled file (--file)',
        (y) =>
          y
            .option('run', { type: 'string', demandOption: true, describe: 'run directory' })
            .option('split', { choices: ['dev', 'test'] as const, default: 'dev' as const })
            .option('checkpoint', { choices: ['latest', 'best'] as const, default: 'latest' as const })
            .option('file', { type: 'string', describe: 'score a labelled CSV, TSV or JSONL file (the run\'s text and label columns) instead of a split' })
            .option('batch-size', { type: 'number', describe: 'eval batch size (default: the run config\'s)' }),
        async (a) =>
          (await import('./eval.js')).evalCommand({ run: a.run, split: a.split, checkpoint: a.checkpoint, file: a.file, batchSize: a['batch-size'], backend: a.backend, logLevel: a['log-level'] }),
      )
      .command(
        'predict',
        'label new text with a trained run: one JSON line a text (label, every label\'s score; think, answer and guess for RL and GTA)',
        (y) =>
          y
            .option('run', { type: 'string', demandOption: true, describe: 'run directory' })
            .option('checkpoint', { choices: ['latest', 'best'] as const, default: 'latest' as const })
            .option('input', { type: 'string', demandOption: true, describe: "CSV, TSV or JSONL file (optionally .gz) with a text column, another file of one text a line, or '-' for one text a line on stdin" })
            .option('text-column', { type: 'string', describe: "the input's text column (default: the run's data.text_column)" })
            .option('out', { type: 'string', describe: 'write the JSON lines here (complete or not at all) instead of stdout' })
            .option('batch-size', { type: 'number', describe: 'batch size (default: the run config\'s eval.batch_size)' }),
        async (a) =>
          (await import('./predict.js')).predictCommand({ run: a.run, checkpoint: a.checkpoint, input: a.input, textColumn: a['text-column'], out: a.out, batchSize: a['batch-size'], backend: a.backend, logLevel: a['log-level'] }),
      )
      .command(
        'export',
        'write a run\'s checkpoint as a Hugging Face folder (transformers\' AutoModelForCausalLM and AutoTokenizer load it)',
        (y) =>
          y
            .option('run', { type: 'string', demandOption: true, describe: 'run directory' })
            .option('checkpoint', { choices: ['latest', 'best'] as const, default: 'latest' as const })
            .option('out', { type: 'string', demandOption: true, describe: 'the folder to write (new or empty)' })
            .option('merge-lora', { type: 'boolean', default: false, describe: 'a LoRA run: merge its adapters into the weights (W + alpha/r A B)' }),
        async (a) => (await import('./export.js')).exportCommand({ run: a.run, checkpoint: a.checkpoint, out: a.out, mergeLora: a['merge-lora'], backend: a.backend, logLevel: a['log-level'] }),
      )
      .command(
        'compare-baselines',
        'run SFT vs RL vs GTA over datasets and seeds, then write tables, curves and report.html',
        (y) =>
          y
            .option('config', { type: 'string', demandOption: true, describe: 'YAML sweep config (configs/compare-*.yaml)' })
            .option('datasets', { type: 'string', array: true, describe: 'override the datasets' })
            .option('modes', { type: 'string', array: true, describe: 'override the modes (sft, rl, gta)' })
            .option('seeds', { type: 'number', array: true, describe: 'override the seeds' })
            .option('jobs', { type: 'number', describe: 'runs in parallel (worker processes)' })
            .option('set', { type: 'string', array: true, default: [], describe: 'override a key of every run config' })
            .option('queue', { type: 'string', describe: 'redis://[user:password@]host:port[/db]: run the runs as jobs there, for gta worker processes (password also from GTA_REDIS_PASSWORD)' })
            .option('shared', { type: 'boolean', describe: 'with --queue: the sweep folder is on storage every worker mounts at the same path, and workers write the runs there' })
            .option('force', { type: 'boolean', describe: 'train again the runs in the sweep folder that were made with another config (without it they are refused)' }),
        async (a) =>
          (await import('./compare.js')).compareCommand({ config: a.config, datasets: a.datasets as string[] | undefined, modes: a.modes as string[] | undefined, seeds: a.seeds as number[] | undefined, jobs: a.jobs, set: a.set as string[], backend: a.backend, logLevel: a['log-level'], queue: a.queue, shared: a.shared, force: a.force }),
      )
      .command(
        'worker',
        'run sweep jobs from a Redis queue (gta compare-baselines --queue) until stopped',
        (y) =>
          y
            .option('queue', { type: 'string', demandOption: true, describe: 'redis://[user:password@]host:port[/db] (password also from GTA_REDIS_PASSWORD)' })
            .option('jobs', { type: 'number', default: 1, describe: 'jobs at once, each in its own process with its share of the cores' })
            .option('allow', { type: 'string', array: true, default: [], describe: 'a folder jobs may read and write (a shared sweep folder, data, checkpoints) besides datasets/ and checkpoints/' })
            .option('runs', { type: 'string', default: 'runs/worker', describe: 'where runs of sweeps without shared storage are trained' })
            .option('stall-s', { type: 'number', default: 30, describe: 'seconds without lock renewal after which a dead worker\'s job goes to another worker' }),
        async (a) => (await import('./worker.js')).workerCommand({ queue: a.queue, jobs: a.jobs, allow: a.allow as string[], runs: a.runs, stallS: a['stall-s'], backend: a.backend, logLevel: a['log-level'] }),
      )
      .command(
        'report <runs..>',
        'tables, curves and report.html for finished runs (run directories or sweep folders)',
        (y) =>
          y
            .positional('runs', { type: 'string', array: true, demandOption: true })
            .option('out', { type: 'string', default: 'report', describe: 'output folder' })
            .option('threshold-fraction', { type: 'number', describe: 'threshold = this x the best arm\'s final mean accuracy (default: the sweep\'s, else 0.95)' }),
        async (a) => (await import('./report.js')).reportCommand({ runs: a.runs as string[], out: a.out, fraction: a['threshold-fraction'], logLevel: a['log-level'] }),
      )
      .command(
        'runs [dir]',
        'list the runs of a runs folder (and its sweeps), newest first: mode, dataset, status, step, dev accuracy, time',
        (y) => y.positional('dir', { type: 'string', default: 'runs', describe: 'runs folder, sweep folder or run directory' }),
        async (a) => (await import('./runs.js')).runsCommand({ dir: a.dir }),
      )
      .command(
        'pretrain',
        'train the base causal language model on the benchmarks\' training text (and a corpus from gta corpus build)',
        (y) =>
          y
            .option('config', { type: 'string', describe: 'YAML pretraining config' })
            .option('resume', { type: 'string', describe: "continue a pretraining run from its latest checkpoint: a run directory, or 'latest'" })
            .option('set', { type: 'string', array: true, default: [], describe: 'override a config key' }),
        async (a) => (await import('./pretrain.js')).pretrainCommand({ config: a.config, resume: a.resume, set: a.set as string[], backend: a.backend, logLevel: a['log-level'] }),
      )
      .command(
        'corpus <action>',
        'build the English pretraining corpus from text that npm dependencies ship, without benchmark dev or test text',
        (y) =>
          y
            .positional('action', { choices: ['build'] as const, describe: 'build: write the corpus file and its manifest' })
            .option('out', { type: 'string', default: DEFAULT_CORPUS, describe: 'corpus file (its manifest goes beside it)' })
            .option('sources', { type: 'string', array: true, default: [...SOURCE_NAMES], describe: `sources, in order (${SOURCE_NAMES.join(', ')})` })
            .option('ngram', { type: 'number', default: DEFAULT_NGRAM, describe: 'a corpus line sharing this many consecutive words with a dev or test text is removed' }),
        async (a) => (await import('./corpus.js')).corpusBuildCommand({ out: a.out, sources: (a.sources as string[]).flatMap((s) => s.split(',')).filter((s) => s !== ''), ngram: a.ngram, logLevel: a['log-level'] }),
      )
      .demandCommand(1, 'name a command (see --help)')
      .strict()
      .fail((msg, err) => {
        throw err ?? new GtaError(msg);
      })
      .help()
      .version(false)
      .parseAsync();
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    // A bar still drawn (the error came mid-loop) is cleared first, so the message starts its own line.
    stopAllProgress();
    if (e instanceof GtaError) {
      process.stderr.write(`gta: error: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`gta: internal error: ${(e as Error).stack ?? e}\n`);
    return 1;
  }
}

/** `--input -` as `--input=-`: yargs reads a lone '-' as a positional argument, not as the option's value (stdin). */
function stdinValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--input' && argv[i + 1] === '-') out.push(`--input=${argv[++i]}`);
    else out.push(argv[i]);
  }
  return out;
}

export async function run(): Promise<void> {
  const code = await main(hideBin(process.argv));
  process.exit(code);
}
