/**
 * `node dist/scripts/heldout_lm.js [--out FILE] PRETRAIN_CONFIG...`: for each pretraining config, its base
 * checkpoint (the config's `output`), the tokens of its training corpus, and the base's held-out quality
 * on the complete dev text of the seven built-in benchmarks (the carve that pretraining and fine-tuning
 * use, dev_fraction 0.1 and split_seed 0, so none of it was trained on): per-token perplexity under the
 * base's own tokenizer, and bits per byte, which compares bases whose tokenizers differ. One JSON line
 * per config on stdout (and appended to --out).
 */
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { initBackend } from '../src/backend/select.js';
import { loadConfig } from '../src/config/load.js';
import { PretrainConfigSchema } from '../src/config/schema.js';
import { BUILTIN_DATASETS } from '../src/data/registry.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { heldOutQuality, lmSequences, loadCorpus } from '../src/train/pretrain.js';

const args = await yargs(hideBin(process.argv))
  .usage('$0 [--out FILE] PRETRAIN_CONFIG...')
  .option('out', { type: 'string', describe: 'also append the JSON lines to this file' })
  .option('batch', { type: 'number', default: 64 })
  .option('backend', { type: 'string', default: 'auto' })
  .demandCommand(1, 'name at least one pretraining config')
  .strict()
  .parseAsync();

const backend = await initBackend(args.backend as 'auto');
// The same held-out text for every base, whatever its own corpus list.
const { heldOut } = await loadCorpus(PretrainConfigSchema.parse({ corpus: [...BUILTIN_DATASETS] }));
for (const file of args._.map(String)) {
  const t0 = Date.now();
  const { config } = loadConfig(PretrainConfigSchema, file);
  const { model, tokenizer, meta } = loadCheckpoint(config.output);
  const seqLen = Math.min(config.train.seq_len, model.arch.max_seq_len);
  // counted as pretraining counts it (lmSequences: each piece's BOS and targets)
  const corpusTokens = lmSequences(tokenizer, (await loadCorpus(config)).train, seqLen).reduce((a, s) => a + s.target.length + 1, 0);
  const q = heldOutQuality(model, tokenizer, heldOut, seqLen, args.batch);
  const line = JSON.stringify({ config: file, checkpoint: config.output, params: model.numParams, arch: model.arch, steps: meta.step, corpus_tokens: corpusTokens, held_out: { datasets: BUILTIN_DATASETS, ...q }, backend: backend.name, seconds: (Date.now() - t0) / 1000 });
  process.stdout.write(line + '\n');
  if (args.out) {
    fs.mkdirSync(path.dirname(args.out), { recursive: true });
    fs.appendFileSync(args.out, line + '\n');
  }
}
