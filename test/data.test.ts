import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadDataset, type DataConfig } from '../src/data/load.js';
import { BUILTIN_DATASETS, datasetDir } from '../src/data/registry.js';
import { readTable } from '../src/data/read_table.js';
import { GtaError } from '../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'gta-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Write a fixture file into the temp dir and return its path. */
function write(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

function cfg(over: Partial<DataConfig>): DataConfig {
  return { text_column: 'text', label_column: 'label', dev_fraction: 0.1, ...over };
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The promise fails with a one-line GtaError whose message matches `file:line: what`. */
async function failsWith(p: Promise<unknown>, file: string, line: number | null, what: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof GtaError, `expected GtaError, got ${String(e)}`);
    const where = line === null ? `${esc(file)}: ` : `${esc(file)}:${line}: `;
    assert.match(e.message, new RegExp(`^${where}${what.source}`));
    assert.ok(!e.message.includes('\n'), 'message must be one line');
    return true;
  });
}

// 100 rows, three classes of 50/30/20, each text unique so splits can be compared by text.
const COUNTS: Record<string, number> = { a: 50, b: 30, c: 20 };
const bigCsv = write(
  'big.csv',
  'text,label\n' +
    Object.entries(COUNTS)
      .flatMap(([l, n]) => Array.from({ length: n }, (_, i) => `text ${l}${i},${l}\n`))
      .join(''),
);

test('built-in datasets load with the labels of labels.txt', async () => {
  // One at a time, so only one dataset is held in memory.
  for (const name of BUILTIN_DATASETS) {
    const d = await loadDataset(cfg({ name }), 0);
    const labelsTxt = readFileSync(join(datasetDir(name), 'labels.txt'), 'utf8').split('\n').filter((l) => l !== '');
    assert.deepEqual(d.labels, labelsTxt, name);
    assert.ok(d.train.length > 0 && d.dev.length > 0 && d.test.length > 0, name);
    for (const split of [d.train, d.dev, d.test]) {
      assert.ok(split.every((e) => e.label >= 0 && e.label < d.labels.length && e.text.trim() !== ''), name);
    }
    if (name === 'sst2') {
      assert.deepEqual(d.labels, ['negative', 'positive']);
      assert.deepEqual([d.train.length, d.dev.length, d.test.length], [67349, 872, 1821]);
      assert.equal(d.devSource, 'file');
    }
    if (name === 'trec') {
      // No shipped dev: 10% of each class carved from the 5452 train questions.
      assert.equal(d.devSource, 'carved');
      assert.equal(d.train.length + d.dev.length, 5452);
      assert.equal(d.test.length, 500);
    }
  }
});

test('unknown built-in name lists the known ones', async () => {
  await assert.rejects(loadDataset(cfg({ name: 'sst3' }), 0), (e: unknown) => {
    assert.ok(e instanceof GtaError);
    assert.match(e.message, /unknown dataset 'sst3'.*sst2, ag_news, sst5, massive_scenario, emotion, bbc_news, trec/);
    return true;
  });
});

test('dev carve is seeded, stratified and disjoint from train', async () => {
  const a = await loadDataset(cfg({ train_file: bigCsv, dev_fraction: 0.2 }), 7);
  const again = await loadDataset(cfg({ train_file: bigCsv, dev_fraction: 0.2 }), 7);
  const other = await loadDataset(cfg({ train_file: bigCsv, dev_fraction: 0.2 }), 8);
  assert.equal(a.devSource, 'carved');
  assert.deepEqual(a.labels, ['a', 'b', 'c']);
  assert.deepEqual(again.dev, a.dev);
  assert.notDeepEqual(other.dev.map((e) => e.text), a.dev.map((e) => e.text));
  // 20% of each class.
  const perClass = [0, 0, 0];
  for (const e of a.dev) perClass[e.label]++;
  assert.deepEqual(perClass, [10, 6, 4]);
  // Disjoint, and together they are the whole file.
  const trainTexts = new Set(a.train.map((e) => e.text));
  assert.ok(a.dev.every((e) => !trainTexts.has(e.text)));
  assert.equal(a.train.length + a.dev.length, 100);
});

test('max_train_examples subsamples after the carve; max_eval_examples caps dev and test', async () => {
  const full = await loadDataset(cfg({ train_file: bigCsv, test_file: bigCsv, dev_fraction: 0.2 }), 3);
  const small = await loadDataset(cfg({ train_file: bigCsv, test_file: bigCsv, dev_fraction: 0.2, max_train_examples: 10 }), 3);
  const mid = await loadDataset(cfg({ train_file: bigCsv, test_file: bigCsv, dev_fraction: 0.2, max_train_examples: 20 }), 3);
  assert.deepEqual(small.dev, full.dev, 'the carve does not depend on max_train_examples');
  assert.equal(small.train.length, 10);
  const fullTexts = new Set(full.train.map((e) => e.text));
  assert.ok(small.train.every((e) => fullTexts.has(e.text)));
  const midTexts = new Set(mid.train.map((e) => e.text));
  assert.ok(small.train.every((e) => midTexts.has(e.text)), 'raising the cap only adds examples');

  const capped = await loadDataset(cfg({ train_file: bigCsv, test_file: bigCsv, dev_fraction: 0.2, max_eval_examples: 5 }), 3);
  assert.equal(capped.dev.length, 5);
  assert.equal(capped.test.length, 5);
  assert.deepEqual(capped.train, full.train);
});

test('CSV with custom columns, quoted commas and newlines; labels inferred and sorted', async () => {
  const train = write('t.csv', 'id,sentence,category\n1,"hello, world",pos\n2,"two\nlines",neg\n3,plain,pos\n');
  const test_ = write('t_test.csv', 'category,sentence\nneg,bad\n');
  const d = await loadDataset(cfg({ train_file: train, test_file: test_, text_column: 'sentence', label_column: 'category', dev_fraction: 0 }), 0);
  assert.equal(d.name, 't');
  assert.deepEqual(d.labels, ['neg', 'pos']);
  assert.deepEqual(d.train, [
    { text: 'hello, world', label: 1 },
    { text: 'two\nlines', label: 0 },
    { text: 'plain', label: 1 },
  ]);
  assert.deepEqual(d.test, [{ text: 'bad', label: 0 }]);
  assert.deepEqual(d.dev, []);
});

test('TSV and gzipped TSV with custom columns and a given label set', async () => {
  const body = 'review\tstars\ngreat film\tgood\nawful\tbad\n';
  const tsv = write('r.tsv', body);
  const gz = write('r.tsv.gz', gzipSync(body));
  for (const f of [tsv, gz]) {
    const d = await loadDataset(cfg({ train_file: f, dev_file: f, text_column: 'review', label_column: 'stars', labels: ['bad', 'good'] }), 0);
    assert.deepEqual(d.train, [
      { text: 'great film', label: 1 },
      { text: 'awful', label: 0 },
    ]);
    assert.equal(d.devSource, 'file');
  }
});

test('JSONL with custom keys; numeric labels sort as numbers', async () => {
  const f = write('j.jsonl', '{"q": "a", "y": 10}\n\n{"q": "b", "y": 2}\r\n{"q": "c", "y": "2"}\n');
  const d = await loadDataset(cfg({ train_file: f, text_column: 'q', label_column: 'y', dev_fraction: 0 }), 0);
  assert.deepEqual(d.labels, ['2', '10']);
  assert.deepEqual(d.train.map((e) => e.label), [1, 0, 0]);
});

test('BOM and CRLF files load, and line numbers count physical lines', async () => {
  const f = write('bom.csv', '\ufefftext,label\r\n"multi\r\nline",pos\r\nok,neg\r\n');
  const d = await loadDataset(cfg({ train_file: f, dev_fraction: 0 }), 0);
  assert.deepEqual(d.train, [
    { text: 'multi\r\nline', label: 1 },
    { text: 'ok', label: 0 },
  ]);
  const t = await readTable(f);
  assert.deepEqual(t.columns, ['text', 'label']);
  assert.deepEqual(t.rows.map((r) => r.line), [2, 4]);
});

test('error: missing file', async () => {
  const f = join(dir, 'nope.csv');
  await failsWith(loadDataset(cfg({ train_file: f }), 0), f, null, /no such file$/);
});

test('error: empty file and header-only file', async () => {
  const empty = write('empty.csv', '');
  await failsWith(loadDataset(cfg({ train_file: empty }), 0), empty, null, /file is empty$/);
  const header = write('header.csv', 'text,label\n\n');
  await failsWith(loadDataset(cfg({ train_file: header }), 0), header, null, /no rows after the header$/);
  const emptyJsonl = write('empty.jsonl', '\n\n');
  await failsWith(loadDataset(cfg({ train_file: emptyJsonl }), 0), emptyJsonl, null, /file is empty$/);
});

test('error: missing column', async () => {
  const f = write('cols.csv', 'sentence,label\nx,a\n');
  await failsWith(loadDataset(cfg({ train_file: f }), 0), f, 1, /no column 'text' \(columns: sentence, label\)$/);
  const j = write('cols.jsonl', '{"text":"x","label":"a"}\n{"txt":"y","label":"a"}\n');
  await failsWith(loadDataset(cfg({ train_file: j }), 0), j, 2, /no column 'text' \(columns: txt, label\)$/);
});

test('error: empty text', async () => {
  const f = write('emptytext.csv', 'text,label\r\n"multi\r\nline",a\r\nok,a\r\n  ,a\r\n');
  await failsWith(loadDataset(cfg({ train_file: f }), 0), f, 5, /empty text$/);
});

test('error: label outside the label set', async () => {
  const train = write('lab_train.csv', 'text,label\nx,a\ny,b\nz,c\n');
  const dev = write('lab_dev.csv', 'text,label\nx,a\ny,xyz\n');
  await failsWith(loadDataset(cfg({ train_file: train, dev_file: dev }), 0), dev, 3, /label 'xyz' is not one of: a, b, c$/);
  await failsWith(loadDataset(cfg({ train_file: train, labels: ['a', 'b'] }), 0), train, 4, /label 'c' is not one of: a, b$/);
});

test('error: broken quoting and wrong field count', async () => {
  const f = write('quote.csv', 'text,label\nfine,a\n"never closed,a\nmore,a\n');
  await failsWith(loadDataset(cfg({ train_file: f }), 0), f, 3, /broken quoting \(.*\)$/);
  const g = write('fields.csv', 'text,label\nfine,a\nhello, world,a\n');
  await failsWith(loadDataset(cfg({ train_file: g }), 0), g, 3, /expected 2 fields \(text, label\) but found 3/);
});

test('error: JSONL line that is not JSON or not an object', async () => {
  const bad = write('bad.jsonl', '{"text":"x","label":"a"}\n{"text": "y", label: a}\n');
  await failsWith(loadDataset(cfg({ train_file: bad }), 0), bad, 2, /not valid JSON: /);
  const arr = write('arr.jsonl', '{"text":"x","label":"a"}\n\n["y","a"]\n');
  await failsWith(loadDataset(cfg({ train_file: arr }), 0), arr, 3, /not valid JSON: expected an object per line, got an array$/);
});

test('error: bad config values', async () => {
  await assert.rejects(loadDataset(cfg({ train_file: bigCsv, dev_fraction: 1 }), 0), /dev_fraction must be in \[0, 1\)/);
  await assert.rejects(loadDataset(cfg({ train_file: bigCsv, max_train_examples: 0 }), 0), /max_train_examples must be a positive integer/);
  await assert.rejects(loadDataset(cfg({}), 0), /set name .* or train_file/);
  await assert.rejects(loadDataset(cfg({ name: 'sst2', train_file: bigCsv }), 0), /built-in dataset/);
  const odd = write('data.txt', 'text,label\nx,a\n');
  await failsWith(loadDataset(cfg({ train_file: odd }), 0), odd, null, /cannot tell the format/);
  // An explicit format overrides the extension.
  const d = await loadDataset(cfg({ train_file: odd, format: 'csv', dev_fraction: 0 }), 0);
  assert.deepEqual(d.train, [{ text: 'x', label: 0 }]);
});

test('integer labels index data.labels; an exact name wins over an index', async () => {
  // JSONL numbers and CSV strings alike; names and indices may mix.
  const j = write('idx.jsonl', '{"text": "great", "label": 1}\n{"text": "awful", "label": 0}\n{"text": "fine", "label": "1"}\n{"text": "meh", "label": "negative"}\n');
  const d = await loadDataset(cfg({ train_file: j, dev_file: j, labels: ['negative', 'positive'] }), 0);
  assert.deepEqual(d.labels, ['negative', 'positive']);
  assert.deepEqual(d.train.map((e) => e.label), [1, 0, 1, 0]);
  const c = write('idx.csv', 'text,label\ngreat,1\nawful,0\n');
  assert.deepEqual((await loadDataset(cfg({ train_file: c, dev_file: c, labels: ['negative', 'positive'] }), 0)).train.map((e) => e.label), [1, 0]);
  // Star ratings named "1", "2", "5": the names mean themselves; only a non-name integer is an index.
  const stars = write('stars.csv', 'text,label\na,5\nb,1\nc,2\nd,0\n');
  const s = await loadDataset(cfg({ train_file: stars, dev_file: stars, labels: ['1', '2', '5'] }), 0);
  assert.deepEqual(s.train.map((e) => e.label), [2, 0, 1, 0]);
});

test('error: an integer label past the end of data.labels names file:line', async () => {
  const f = write('idx-bad.jsonl', '{"text": "great", "label": 1}\n{"text": "awful", "label": 2}\n');
  await failsWith(loadDataset(cfg({ train_file: f, dev_fraction: 0, labels: ['negative', 'positive'] }), 0), f, 2, /label 2 is not a class index \(0 to 1: negative, positive\) nor one of the names$/);
  const g = write('idx-bad2.csv', 'text,label\ngreat,positive\nawful,bad\n');
  await failsWith(loadDataset(cfg({ train_file: g, dev_fraction: 0, labels: ['negative', 'positive'] }), 0), g, 3, /label 'bad' is not one of: negative, positive$/);
});

test('error: labels that look like class indices (0, 1, ...) without data.labels', async () => {
  const f = write('idx-nolabels.jsonl', '{"text": "great", "label": 1}\n{"text": "awful", "label": 0}\n');
  await failsWith(loadDataset(cfg({ train_file: f, dev_fraction: 0 }), 0), f, null, /labels look like class indices \(0 to 1\); give data\.labels: \[names in index order\]/);
  // The numbers as names, when that is what is wanted.
  const d = await loadDataset(cfg({ train_file: f, dev_fraction: 0, labels: ['0', '1'] }), 0);
  assert.deepEqual(d.train.map((e) => e.label), [1, 0]);
});
