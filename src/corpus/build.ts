/**
 * `gta corpus build`: the pretraining corpus file and its manifest. Every source's lines are cleaned,
 * dropped when they repeat an earlier line or carry benchmark evaluation text (dedup.ts), and written
 * one per line; the manifest says per source which package and version the text came from, its terms,
 * what each rule removed, and the bytes, lines and sha256 of what was kept. No timestamps: the same
 * packages give the same bytes, so a rebuild can be checked against a committed manifest.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readTable } from '../data/read_table.js';
import { BUILTIN_DATASETS, datasetDir } from '../data/registry.js';
import { splitFile } from '../data/load.js';
import { writeError } from '../util/errors.js';
import { repoRoot } from '../util/paths.js';
import type { Logger } from '../util/log.js';
import { DEFAULT_NGRAM, EvalIndex } from './dedup.js';
import { matchKey } from './normalize.js';
import { findSource, packageInfo, type Source } from './sources.js';

export const DEFAULT_CORPUS = 'corpora/english.txt';

export interface SourceManifest {
  name: string;
  package: string;
  version: string;
  terms: string;
  extracted_lines: number;
  removed: { repeated: number; exact: number; ngram: number };
  lines: number;
  bytes: number;
  sha256: string;
}

export interface CorpusManifest {
  corpus: string;
  built_by: string;
  lines: number;
  bytes: number;
  sha256: string;
  dedup: {
    ngram_words: number;
    rules: Record<string, string>;
    /** The benchmark files whose text may not enter the corpus. */
    eval_files: string[];
    eval_texts: number;
    eval_ngrams: number;
  };
  sources: SourceManifest[];
}

/** `corpora/english.txt` -> `corpora/english.manifest.json`. */
export function manifestPath(corpus: string): string {
  return corpus.replace(/\.txt$/, '') + '.manifest.json';
}

/**
 * Every built-in benchmark's dev and test files, and the train file of those whose dev set is carved
 * from train: which rows the carve holds out depends on dev_fraction and split_seed, so any of them
 * may be dev text.
 */
export function evalFiles(): string[] {
  const files: string[] = [];
  for (const name of BUILTIN_DATASETS) {
    const dir = datasetDir(name);
    const dev = splitFile(dir, 'dev');
    const test = splitFile(dir, 'test');
    const train = splitFile(dir, 'train');
    for (const f of [dev, test, dev === undefined ? train : undefined]) if (f !== undefined) files.push(f);
  }
  return files;
}

export async function evalIndex(files: string[], n: number): Promise<EvalIndex> {
  const index = new EvalIndex(n);
  for (const f of files) {
    const t = await readTable(f);
    for (const row of t.rows) {
      const v = row.values.text;
      if (typeof v === 'string') index.add(v);
    }
  }
  return index;
}

export interface BuildOptions {
  out: string;
  sources: string[];
  ngram?: number;
  /** The texts to keep out (default: evalFiles()); tests pass a small set. */
  evalFiles?: string[];
  /** Lines per source instead of the packages' files (tests); the package must still be installed for its version. */
  extract?: (s: Source, dir: string) => string[];
  log?: Logger;
}

export async function buildCorpus(o: BuildOptions): Promise<CorpusManifest> {
  const n = o.ngram ?? DEFAULT_NGRAM;
  // an unknown source name fails before the minutes of work, not after them
  const chosen = o.sources.map(findSource);
  const files = o.evalFiles ?? evalFiles();
  const index = await evalIndex(files, n);
  o.log?.info({ files: files.length, texts: index.texts, ngrams: index.ngrams }, 'evaluation text indexed');
  const seen = new Set<string>();
  const chunks: string[] = [];
  const whole = createHash('sha256');
  const sources: SourceManifest[] = [];
  for (const src of chosen) {
    const name = src.name;
    const { dir, version } = packageInfo(src.package);
    const lines = (o.extract ?? ((s, d) => s.extract(d)))(src, dir);
    const removed = { repeated: 0, exact: 0, ngram: 0 };
    const kept: string[] = [];
    for (const line of lines) {
      const key = matchKey(line);
      if (key === '') continue;
      // the evaluation rules first, so a repeated contaminated line counts as contamination
      const rule = index.match(line);
      if (rule) removed[rule]++;
      else if (seen.has(key)) removed.repeated++;
      else {
        seen.add(key);
        kept.push(line);
      }
    }
    const text = kept.length > 0 ? kept.join('\n') + '\n' : '';
    whole.update(text);
    chunks.push(text);
    const m: SourceManifest = {
      name,
      package: src.package,
      version,
      terms: src.terms,
      extracted_lines: lines.length,
      removed,
      lines: kept.length,
      bytes: Buffer.byteLength(text),
      sha256: createHash('sha256').update(text).digest('hex'),
    };
    sources.push(m);
    o.log?.info({ source: name, lines: m.lines, removed }, 'source done');
  }
  const body = chunks.join('');
  const manifest: CorpusManifest = {
    corpus: path.basename(o.out),
    built_by: `gta corpus build --sources ${o.sources.join(',')} --ngram ${n}`,
    lines: sources.reduce((a, s) => a + s.lines, 0),
    bytes: Buffer.byteLength(body),
    sha256: whole.digest('hex'),
    dedup: {
      ngram_words: n,
      rules: {
        repeated: 'the line repeats an earlier corpus line (normalised words)',
        exact: 'the line equals a benchmark evaluation text (normalised words)',
        ngram: `the line shares a run of ${n} consecutive normalised words with a benchmark evaluation text`,
      },
      // relative to the checkout, so the manifest does not depend on where the command ran
      eval_files: files.map((f) => path.relative(repoRoot(), path.resolve(f)).split(path.sep).join('/')),
      eval_texts: index.texts,
      eval_ngrams: index.ngrams,
    },
    sources,
  };
  try {
    fs.mkdirSync(path.dirname(o.out), { recursive: true });
    fs.writeFileSync(o.out, body);
    fs.writeFileSync(manifestPath(o.out), JSON.stringify(manifest, null, 2) + '\n');
  } catch (e) {
    throw writeError(o.out, e);
  }
  return manifest;
}
