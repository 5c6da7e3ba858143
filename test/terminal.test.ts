/**
 * What a person sees on a terminal: numbers with sensible precision, and progress bars that leave no
 * frame behind (an eval bar inside the training bar, log lines between frames, then the result).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { formatDuration, formatNumber } from '../src/util/format.js';
import { aboveProgress, startProgress } from '../src/util/progress.js';
import { markdownTable, type CompareRow } from '../src/report/render.js';
import type { Logger } from '../src/util/log.js';
import { tmpDir } from './helpers/tiny.js';
import { GTA, tinyConfig } from './helpers/cli.js';

test('formatDuration and formatNumber: as many digits as a reader can use', () => {
  assert.equal(formatDuration(0.722), '0.7 s');
  assert.equal(formatDuration(42.0734), '42.1 s');
  assert.equal(formatDuration(59.96), '1 min 0 s');
  assert.equal(formatDuration(131.2), '2 min 11 s');
  assert.equal(formatDuration(3725), '1 h 02 min');
  assert.equal(formatDuration(NaN), '–');
  assert.equal(formatNumber(8924.37), '8924');
  assert.equal(formatNumber(1.26561234), '1.266');
  assert.equal(formatNumber(0.53101), '0.531');
  assert.equal(formatNumber(0.000312345), '0.0003123');
  assert.equal(formatNumber(150), '150');
});

test('markdownTable: seconds with one decimal', () => {
  const rows: CompareRow[] = [{ dataset: 'sst2', arm: 'sft', seeds: 2, columns: { 'seconds to threshold': { mean: 42.07345, std: 3.14159, n: 2 }, 'final accuracy': { mean: 0.81234, std: 0.01, n: 2 } } }];
  assert.match(markdownTable(rows), /\| sst2 \| sft \| 2 \| 42\.1 ± 3\.1 \| 0\.8123 ± 0\.0100 \|/);
});

/** Enough of a terminal to replay what a program wrote: text, CR, LF, cursor column, line clears, ESC 7/8. */
class FakeTerminal {
  readonly isTTY = true;
  readonly columns = 120;
  lines: string[] = [''];
  row = 0;
  col = 0;
  private saved: [number, number] = [0, 0];
  write(s: string | Uint8Array, cb?: unknown): boolean {
    const text = typeof s === 'string' ? s : Buffer.from(s).toString('utf8');
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (ch === '\x1b') {
        if (text[i + 1] === '7') { this.saved = [this.row, this.col]; i++; continue; }
        if (text[i + 1] === '8') { [this.row, this.col] = this.saved; i++; continue; }
        const m = /^\[(\??)(\d*)([A-Za-z])/.exec(text.slice(i + 1));
        assert.ok(m, `unknown escape ${JSON.stringify(text.slice(i, i + 8))}`);
        i += m[0].length;
        const n = m[2] === '' ? 0 : Number(m[2]);
        if (m[1] === '?') continue; // cursor shown / hidden
        const line = this.lines[this.row];
        if (m[3] === 'G') this.col = Math.max(0, n - 1);
        else if (m[3] === 'K') this.lines[this.row] = n === 2 ? '' : n === 1 ? ' '.repeat(this.col) + line.slice(this.col) : line.slice(0, this.col);
        else assert.fail(`unexpected escape ${m[0]}`);
        continue;
      }
      if (ch === '\r') this.col = 0;
      else if (ch === '\n') {
        this.row++;
        this.col = 0;
        while (this.lines.length <= this.row) this.lines.push('');
      } else {
        const line = this.lines[this.row].padEnd(this.col);
        this.lines[this.row] = line.slice(0, this.col) + ch + line.slice(this.col + 1);
        this.col++;
      }
    }
    if (typeof cb === 'function') (cb as () => void)();
    return true;
  }
  on(): this { return this; }
  once(): this { return this; }
  removeListener(): this { return this; }
  screen(): string[] {
    return this.lines.map((l) => l.trimEnd()).filter((l) => l !== '');
  }
}

test('progress bars on a terminal: an eval bar inside the training bar and log lines leave no frame behind', () => {
  const term = new FakeTerminal();
  const stream = term as unknown as NodeJS.WriteStream;
  const log = { level: 'info', info() {} } as unknown as Logger;
  const train = startProgress('train', 60, log, 10, stream);
  train.update(10, { 'loss/sft': 1.26561234, 'tok/s': 8924 });
  assert.match(term.screen().at(-1)!, /^train \[.*\] 0\/60|^train \[.*\] 10\/60/, 'the bar is drawn');
  for (const step of [20, 40]) {
    const ev = startProgress(`eval@${step}`, 100, log, 10, stream);
    ev.update(50);
    ev.stop();
    aboveProgress(() => term.write(`INFO: eval ${step}\n`));
    train.update(step + 5, { 'loss/sft': 0.5, 'tok/s': 9000 });
  }
  // A log line while the training bar is drawn lands on a line of its own.
  aboveProgress(() => term.write('WARN: something\n'));
  train.update(60, { 'loss/sft': 0.25, 'tok/s': 9100 });
  train.stop();
  const final = startProgress('eval dev', 100, log, 10, stream);
  final.update(100);
  final.stop();
  term.write('/tmp/runs/tiny\n');
  term.write('dev: accuracy 0.9200  f1_weighted 0.9288  invalid 0.0200  (60 steps, 1.3 s)\n');
  assert.deepEqual(term.screen(), ['INFO: eval 20', 'INFO: eval 40', 'WARN: something', '/tmp/runs/tiny', 'dev: accuracy 0.9200  f1_weighted 0.9288  invalid 0.0200  (60 steps, 1.3 s)']);
});

const hasTmux = spawnSync('tmux', ['-V']).status === 0;

test('gta train in a real terminal (tmux): the result line is clean, every eval logged', { skip: !hasTmux && 'tmux is not installed' }, async () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  const session = `gta-test-${process.pid}`;
  const script = path.join(dir, 'run.sh');
  fs.writeFileSync(script, `cd ${dir} && ${process.execPath} ${GTA} train --config ${cfg} --set train.steps=60 --set train.eval_every=20; echo EXIT=$?; sleep 60\n`);
  const tmux = (...args: string[]) => spawnSync('tmux', args, { encoding: 'utf8' });
  assert.equal(tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', `bash ${script}`).status, 0);
  try {
    let screen = '';
    for (let i = 0; i < 600 && !/EXIT=\d+/.test(screen); i++) {
      await new Promise((r) => setTimeout(r, 100));
      screen = tmux('capture-pane', '-p', '-t', session).stdout;
    }
    assert.match(screen, /EXIT=0/, screen);
    const lines = screen.split('\n').map((l) => l.trimEnd());
    const result = lines.find((l) => l.startsWith('dev: accuracy'));
    assert.ok(result, screen);
    assert.match(result, /^dev: accuracy \d\.\d{4} {2}f1_weighted \d\.\d{4} {2}generate_accuracy \d\.\d{4} {2}invalid \d\.\d{4} {2}\(60 steps, \d+\.\d s\)$/);
    assert.equal(lines.filter((l) => /INFO: eval \{"step":(20|40),/.test(l)).length, 2, screen);
    assert.ok(!lines.some((l) => /[█░]/.test(l)), `a bar frame was left:\n${screen}`);
  } finally {
    tmux('kill-session', '-t', session);
  }
});
