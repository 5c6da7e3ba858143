/**
 * Using a trained run on text of the user's: `gta predict` (CSV, JSONL, one text a line on stdin, --out
 * written whole or not at all, a bad row named by line) and `gta eval --file`, on a tiny run; and the
 * GTA fields of a prediction line (guess, think, answer) from a tiny random model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { decodeTexts } from '../src/eval/evaluate.js';
import { predictionLine } from '../src/eval/predict.js';
import { promptBuilder } from '../src/task/prompt.js';
import { syntheticRows } from './helpers/synthetic.js';
import { GTA, gta, tinyConfig } from './helpers/cli.js';
import { tinyModel, tinyTokenizer, tmpDir, useWasm } from './helpers/tiny.js';

const dir = tmpDir();
let runDir = '';

function trained(): string {
  if (runDir) return runDir;
  const r = gta(['train', '--config', tinyConfig(dir), '--set', 'train.steps=60', '--set', 'train.eval_every=30', '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  runDir = r.stdout.split('\n')[0];
  return runDir;
}

const lines = (s: string) => s.trim().split('\n').map((l) => JSON.parse(l));

test('gta predict labels a CSV file in order, with every label\'s score; gta eval --file scores a labelled file the same way', () => {
  const run = trained();
  const rows = syntheticRows(30, 7);
  const labelled = path.join(dir, 'mine.csv');
  fs.writeFileSync(labelled, 'review,label\n' + rows.map((r) => `${r.text},${r.label}`).join('\n') + '\n');
  const p = gta(['predict', '--run', run, '--input', labelled, '--text-column', 'review', '--log-level', 'warn'], dir);
  assert.equal(p.code, 0, p.stderr);
  const out = lines(p.stdout);
  assert.equal(out.length, 30);
  out.forEach((o, i) => {
    assert.equal(o.line, i + 2);
    assert.equal(o.text, rows[i].text);
    assert.deepEqual(Object.keys(o.scores).sort(), ['negative', 'positive']);
    assert.equal(o.label, Object.entries(o.scores as Record<string, number>).sort((a, b) => b[1] - a[1])[0][0]);
    const total = Object.values(o.scores as Record<string, number>).reduce((a, v) => a + Math.exp(v), 0);
    assert.ok(Math.abs(total - 1) < 1e-4, `probabilities sum to ${total}`);
  });
  const accuracy = out.filter((o, i) => o.label === rows[i].label).length / out.length;
  assert.ok(accuracy >= 0.8, `accuracy ${accuracy}`);

  // the labelled file, its text column renamed to the run's: eval scores what predict labelled
  const asRun = path.join(dir, 'mine2.csv');
  fs.writeFileSync(asRun, fs.readFileSync(labelled, 'utf8').replace(/^review,/, 'text,'));
  const e = gta(['eval', '--run', run, '--file', asRun, '--log-level', 'warn'], dir);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, new RegExp(`^${asRun.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(latest, step 60\\): accuracy ${accuracy.toFixed(4)} `));
  const ev = JSON.parse(fs.readFileSync(path.join(run, 'eval-file-mine2-latest.json'), 'utf8'));
  assert.equal(ev.n, 30);
  const preds = lines(fs.readFileSync(path.join(run, 'eval-file-mine2-latest.predictions.jsonl'), 'utf8'));
  assert.deepEqual(preds.map((q) => q.predicted), out.map((o) => o.label));
  // a label the run does not know is named by line
  fs.writeFileSync(asRun, 'text,label\ngood film,positive\nbad film,neutral\n');
  const bad = gta(['eval', '--run', run, '--file', asRun, '--log-level', 'warn'], dir);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim(), `gta: error: ${asRun}:3: label 'neutral' is not one of: negative, positive`);
});

test('gta predict: one text a line on stdin, JSONL, --out complete or absent, bad rows named by line', () => {
  const run = trained();
  const stdin = spawnSync(process.execPath, [GTA, 'predict', '--run', run, '--input', '-', '--checkpoint', 'best', '--log-level', 'warn'], { cwd: dir, encoding: 'utf8', input: 'a great film\nthe plot was awful\n' });
  assert.equal(stdin.status, 0, stdin.stderr);
  assert.deepEqual(lines(stdin.stdout).map((o) => [o.line, o.text, o.label]), [[1, 'a great film', 'positive'], [2, 'the plot was awful', 'negative']]);

  const jsonl = path.join(dir, 'in.jsonl');
  fs.writeFileSync(jsonl, '{"text": "a lovely story"}\n{"text": "dull acting"}\n');
  const out = path.join(dir, 'out', 'pred.jsonl');
  const j = gta(['predict', '--run', run, '--input', jsonl, '--out', out, '--log-level', 'warn'], dir);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(j.stdout, '');
  assert.deepEqual(lines(fs.readFileSync(out, 'utf8')).map((o) => o.line), [1, 2]);

  // a bad row: exit 2, one line naming file:line, and no output file (not even a partial one)
  fs.writeFileSync(jsonl, '{"text": "a lovely story"}\n{"text": 3}\n');
  const out2 = path.join(dir, 'out', 'pred2.jsonl');
  const b = gta(['predict', '--run', run, '--input', jsonl, '--out', out2, '--log-level', 'warn'], dir);
  assert.equal(b.code, 2);
  assert.equal(b.stderr.trim(), `gta: error: ${jsonl}:2: column 'text' must be a string, got 3`);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'out')), ['pred.jsonl']);
  const blank = spawnSync(process.execPath, [GTA, 'predict', '--run', run, '--input', '-', '--log-level', 'warn'], { cwd: dir, encoding: 'utf8', input: 'good\n\nbad\n' });
  assert.equal(blank.status, 2);
  assert.equal(blank.stderr.trim(), 'gta: error: <stdin>:2: empty text (one text a line)');
  assert.equal(blank.stdout, '');
  const col = gta(['predict', '--run', run, '--input', path.join(dir, 'train.csv'), '--text-column', 'body', '--log-level', 'warn'], dir);
  assert.equal(col.code, 2);
  assert.match(col.stderr.trim(), /train\.csv:1: no column 'body' \(columns: text, label\); name the text column with --text-column$/);
});

test('a GTA prediction line has the guess with its scores, the think and the answer', async () => {
  await useWasm();
  const tok = tinyTokenizer();
  const model = tinyModel(tok);
  const ctx = { model, tokenizer: tok, prompts: promptBuilder(tok, '{text}', 16), labels: ['good', 'bad'], batchSize: 4, maxNewTokens: 12, format: 'gta' as const, decoding: 'structured' as const, thinkMaxTokens: 4 };
  const [d] = decodeTexts(ctx, ['the movie was very good']);
  const line = predictionLine(ctx, { line: 1, text: 'the movie was very good' }, d);
  assert.deepEqual(Object.keys(line), ['line', 'text', 'label', 'scores', 'guess', 'guess_scores', 'think', 'answer']);
  assert.ok(['good', 'bad'].includes(line.guess!));
  assert.equal(line.answer, line.label);
  assert.equal(typeof line.think, 'string');
  assert.ok(Math.abs(Object.values(line.guess_scores!).reduce((a, v) => a + Math.exp(v), 0) - 1) < 1e-4);
  model.dispose();
});
