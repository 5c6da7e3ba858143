/**
 * `gta predict --run DIR [--checkpoint best|latest] --input FILE|- [--text-column C] [--out FILE]`:
 * labels new text with a trained run, one JSON line a text (src/eval/predict.ts), in the input's order.
 * Every row is read and checked first (a bad one is named by line, exit 2, nothing written); --out is
 * written under a temporary name and renamed when complete, so a file by that name is always whole.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readTexts } from '../data/read_texts.js';
import { decodeTexts } from '../eval/evaluate.js';
import { predictionLine } from '../eval/predict.js';
import { createLogger } from '../util/log.js';
import { writeError } from '../util/errors.js';
import { startProgress } from '../util/progress.js';
import { openRun } from './open_run.js';

export interface PredictArgs {
  run: string;
  checkpoint: 'latest' | 'best';
  input: string;
  /** Default: the run's data.text_column. */
  textColumn?: string;
  out?: string;
  batchSize?: number;
  backend?: string;
  logLevel: string;
}

/** Texts decoded and written per chunk: output streams, in order, while batches inside a chunk go by length. */
const CHUNK = 1024;

export async function predictCommand(a: PredictArgs): Promise<void> {
  const log = createLogger(a.logLevel);
  const opened = await openRun(a.run, a.checkpoint, { backend: a.backend, batchSize: a.batchSize, log });
  const { texts, source } = await readTexts(a.input, a.textColumn ?? opened.config.data.text_column);
  const tmp = a.out !== undefined ? `${a.out}.partial-${process.pid}` : undefined;
  const file = tmp !== undefined ? openOut(tmp) : undefined;
  const write = file ?? ((s: string) => void process.stdout.write(s));
  const bar = startProgress(`predict ${source}`, texts.length, log);
  try {
    for (let s = 0; s < texts.length; s += CHUNK) {
      const chunk = texts.slice(s, s + CHUNK);
      // the scored decision alone: free generation is evaluation's second measure, not a label
      const decoded = decodeTexts({ ...opened.ctx, generate: false }, chunk.map((t) => t.text), (done) => bar.update(s + done));
      write(chunk.map((t, i) => JSON.stringify(predictionLine(opened.ctx, t, decoded[i])) + '\n').join(''));
    }
    bar.stop();
    if (file !== undefined) {
      file.close();
      fs.renameSync(tmp!, a.out!);
    }
  } catch (e) {
    if (file !== undefined) {
      file.close();
      fs.rmSync(tmp!, { force: true });
    }
    throw tmp !== undefined ? writeError(a.out!, e) : e;
  }
  log.info({ texts: texts.length, checkpoint: a.checkpoint, step: opened.meta.step, ...(a.out ? { out: path.resolve(a.out) } : {}) }, 'predictions written');
}

/** Appends to `file`, fsynced when closed. */
function openOut(file: string): ((s: string) => void) & { close(): void } {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const fd = fs.openSync(file, 'w');
  let open = true;
  const write = (s: string) => void fs.writeSync(fd, s);
  return Object.assign(write, {
    close() {
      if (!open) return;
      open = false;
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    },
  });
}
