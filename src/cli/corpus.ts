/**
 * `gta corpus build [--out FILE] [--sources a,b] [--ngram N]`: writes the English pretraining corpus
 * (src/corpus/) and its manifest beside it; `corpus_file:` in a pretraining config uses it.
 */
import { buildCorpus, manifestPath } from '../corpus/build.js';
import { createLogger } from '../util/log.js';
import { GtaError } from '../util/errors.js';

export async function corpusBuildCommand(a: { out: string; sources: string[]; ngram: number; logLevel: string }): Promise<void> {
  if (!(Number.isInteger(a.ngram) && a.ngram > 0)) throw new GtaError(`--ngram must be a positive integer, got ${a.ngram}`);
  const log = createLogger(a.logLevel);
  const m = await buildCorpus({ out: a.out, sources: a.sources, ngram: a.ngram, log });
  const removed = m.sources.map((s) => `${s.name}: ${s.lines} lines kept, removed ${s.removed.exact} exact, ${s.removed.ngram} ${m.dedup.ngram_words}-gram, ${s.removed.repeated} repeated`);
  process.stdout.write(`${a.out} (${m.lines} lines, ${m.bytes} bytes, sha256 ${m.sha256})\n${removed.join('\n')}\nmanifest: ${manifestPath(a.out)}\n`);
}
