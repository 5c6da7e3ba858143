/**
 * `gta export --run DIR [--checkpoint best|latest] --out DIR [--merge-lora]`: a run's checkpoint as a
 * folder transformers' AutoModelForCausalLM.from_pretrained and AutoTokenizer.from_pretrained load
 * (src/model/hf_export.ts), with gta_export.json saying what it is and how gta built its prompts.
 */
import path from 'node:path';
import { exportHfFolder } from '../model/hf_export.js';
import { createLogger } from '../util/log.js';
import { openRun } from './open_run.js';

export interface ExportArgs {
  run: string;
  checkpoint: 'latest' | 'best';
  out: string;
  mergeLora: boolean;
  backend?: string;
  logLevel: string;
}

export async function exportCommand(a: ExportArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  const { config, labels, meta, ctx } = await openRun(a.run, a.checkpoint, { backend: a.backend });
  const about = {
    run: path.resolve(a.run),
    checkpoint: a.checkpoint,
    step: meta.step,
    mode: config.mode,
    init: config.init,
    labels,
    // a prompt is BOS, the template around the text, then the mode's completion: <answer>LABEL</answer> (sft),
    // <think>...</think><answer>LABEL</answer> (rl), <guess>LABEL</guess><think>...</think><answer>LABEL</answer> (gta)
    prompt: { template: config.prompt.template, chat: config.prompt.chat, max_text_tokens: config.data.max_text_tokens },
    exported: new Date().toISOString(),
  };
  const r = exportHfFolder(ctx.model, ctx.tokenizer, a.out, { mergeLora: a.mergeLora, about });
  process.stdout.write(`${a.out}: ${r.note}\n`);
  log.info({ out: path.resolve(a.out), model_type: r.model_type, vocab_size: r.vocab_size, step: meta.step }, 'exported');
}
