/**
 * Every run writes its metrics as a TensorBoard event file (tb/). Read back here with a reader of this
 * test's own (TFRecord frames, both CRCs, the Event proto from TensorFlow's field numbers) and compared
 * with metrics.jsonl line by line; and with TensorBoard's own reader when Python's tensorboard is there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import protobuf from 'protobufjs';
import { crc32c } from '@aws-crypto/crc32c';
import { RunDir, RUN_FILES } from '../src/run/run_dir.js';
import { tmpDir } from './helpers/tiny.js';
import { gta, tinyConfig } from './helpers/cli.js';

// tensorflow/core/util/event.proto and core/framework/summary.proto, the fields read here.
const root = protobuf.parse(
  `syntax = "proto3";
  message Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; SessionLog session_log = 6; } }
  message SessionLog { enum Status { UNSPECIFIED = 0; START = 1; STOP = 2; CHECKPOINT = 3; } Status status = 1; }
  message Summary { message Value { string tag = 1; oneof value { float simple_value = 2; } } repeated Value value = 1; }`,
  { keepCase: true },
).root;
const EventType = root.lookupType('Event');

interface Ev {
  wall_time: number;
  step: number;
  file_version?: string;
  session_log?: { status: string };
  summary?: { value: { tag: string; simple_value: number }[] };
}

const masked = (b: Uint8Array) => {
  const c = crc32c(b);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
};

function readEventFile(file: string): { events: Ev[]; raw: Buffer[] } {
  const buf = fs.readFileSync(file);
  const events: Ev[] = [];
  const raw: Buffer[] = [];
  let at = 0;
  while (at < buf.length) {
    assert.ok(at + 12 <= buf.length, 'a whole header');
    const len = Number(buf.readBigUInt64LE(at));
    assert.equal(buf.readUInt32LE(at + 8), masked(buf.subarray(at, at + 8)), `length CRC at ${at}`);
    const data = buf.subarray(at + 12, at + 12 + len);
    assert.equal(data.length, len, 'a whole record');
    assert.equal(buf.readUInt32LE(at + 12 + len), masked(data), `data CRC at ${at}`);
    raw.push(data);
    events.push(EventType.toObject(EventType.decode(data), { longs: Number, enums: String }) as Ev);
    at += 16 + len;
  }
  return { events, raw };
}

/** What TensorBoard should show for one metrics line: its finite numbers, eval lines prefixed by split. */
function expectedScalars(line: Record<string, unknown>): Record<string, number> {
  const out: Record<string, number> = {};
  const train = line.split === 'train';
  for (const [k, v] of Object.entries(line)) {
    if (['step', 'split', 'time_s'].includes(k) || typeof v !== 'number' || !Number.isFinite(v)) continue;
    if (k === 'epoch' && !train) continue;
    out[train ? k : `${line.split}/${k}`] = Math.fround(v);
  }
  return out;
}

function summaries(events: Ev[]): { step: number; scalars: Record<string, number>; wall: number }[] {
  return events
    .filter((e) => e.summary)
    .map((e) => ({ step: e.step ?? 0, wall: e.wall_time, scalars: Object.fromEntries(e.summary!.value.map((v) => [v.tag, v.simple_value])) }));
}

test('CRC32C: the standard check value', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
});

test('a tiny run leaves tb/ with one event file that holds metrics.jsonl, step by step', () => {
  const dir = tmpDir();
  const t0 = Date.now() / 1000;
  const r = gta(['train', '--config', tinyConfig(dir), '--set', 'train.steps=60', '--set', 'train.eval_every=20', '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const runDir = r.stdout.split('\n')[0];
  const tb = path.join(runDir, 'tb');
  const files = fs.readdirSync(tb);
  assert.equal(files.length, 1, files.join(', '));
  assert.match(files[0], /^events\.out\.tfevents\.\d{10}\.[A-Za-z0-9._-]+\.gta$/);
  const { events, raw } = readEventFile(path.join(tb, files[0]));

  // The first record: wall_time (field 1, double) and file_version (field 3) "brain.Event:2", byte for byte.
  assert.equal(events[0].file_version, 'brain.Event:2');
  assert.ok(events[0].wall_time >= t0 - 1 && events[0].wall_time <= Date.now() / 1000 + 1);
  assert.equal(raw[0][0], 0x09);
  assert.deepEqual([...raw[0].subarray(9)], [0x1a, 13, ...Buffer.from('brain.Event:2')]);

  const lines = new RunDir(runDir).readJsonl(RUN_FILES.metrics);
  assert.equal(lines.filter((l) => l.split === 'train').length, 6);
  assert.deepEqual(lines.filter((l) => l.split === 'dev').map((l) => l.step), [20, 40, 60]);
  const got = summaries(events.slice(1));
  assert.equal(got.length, lines.length, 'one event per metrics line');
  for (const [i, line] of lines.entries()) {
    assert.equal(got[i].step, line.step);
    assert.deepEqual(got[i].scalars, expectedScalars(line), `line ${i + 1}`);
  }
  assert.ok('train/loss_sft' in got[0].scalars && 'epoch' in got[0].scalars);
  assert.ok('dev/eval/accuracy' in got.find((g) => g.step === 20 && 'dev/eval/accuracy' in g.scalars)!.scalars);
  for (let i = 1; i < got.length; i++) assert.ok(got[i].wall >= got[i - 1].wall, 'wall times in order');

  const python = spawnSync('python3', ['-c', 'import tensorboard'], { encoding: 'utf8' });
  if (python.status !== 0) return; // TensorBoard's own reader is not installed: the reader above stands alone.
  const script = `
import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0}); acc.Reload()
print(json.dumps({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in acc.Tags()['scalars']}))`;
  const out = spawnSync('python3', ['-c', script, tb], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  const byTag = JSON.parse(out.stdout) as Record<string, [number, number][]>;
  const want: Record<string, [number, number][]> = {};
  for (const line of lines) for (const [tag, v] of Object.entries(expectedScalars(line))) (want[tag] ??= []).push([Number(line.step), v]);
  assert.deepEqual(byTag, want);
});

test('a resume rewrites tb/ as one new file: the kept points at their wall times, then the new ones', () => {
  const dir = path.join(tmpDir(), 'run');
  const run = RunDir.createAt(dir);
  run.writeJson(RUN_FILES.info, { status: 'running', started: new Date().toISOString() });
  const line = (step: number, loss: number) => ({ step, epoch: step / 100, time_s: step / 10, split: 'train', 'train/loss_sft': loss, 'train/lr': 0.001, note: 'a string' });
  for (const s of [10, 20, 30]) run.appendJsonl('metrics.jsonl', line(s, 1 / s));
  run.appendJsonl('metrics.jsonl', { step: 30, epoch: 0.3, time_s: 3, split: 'dev', 'eval/accuracy': 0.625 });
  for (const s of [40, 50]) run.appendJsonl('metrics.jsonl', line(s, 1 / s));
  const tb = path.join(dir, 'tb');
  const [before] = fs.readdirSync(tb);
  const oldWall = summaries(readEventFile(path.join(tb, before)).events).map((e) => e.wall);

  // Killed after step 50, resumed from the checkpoint at step 30 (in a new process: a new RunDir).
  const resumed = new RunDir(dir);
  resumed.resumeAt(30, []);
  const [after, ...more] = fs.readdirSync(tb);
  assert.equal(more.length, 0, 'the old event file is gone');
  assert.ok(after > before, `${after} sorts after ${before} (TensorBoard reads files in name order)`);
  for (const s of [40, 50]) resumed.appendJsonl('metrics.jsonl', line(s, 2 / s));

  const { events } = readEventFile(path.join(tb, after));
  assert.equal(events[0].file_version, 'brain.Event:2');
  // A SessionLog START at step 0: a TensorBoard that read the old file drops it and takes this one.
  assert.equal(events[1].session_log?.status, 'START');
  assert.equal(events[1].step ?? 0, 0);
  const lines = resumed.readJsonl(RUN_FILES.metrics);
  assert.deepEqual(lines.map((l) => l.step), [10, 20, 30, 30, 40, 50]);
  const got = summaries(events.slice(2));
  assert.deepEqual(got.map((g) => g.step), [10, 20, 30, 30, 40, 50]);
  for (const [i, l] of lines.entries()) assert.deepEqual(got[i].scalars, expectedScalars(l));
  assert.equal(got[4].scalars['train/loss_sft'], Math.fround(2 / 40), 'the resumed run\'s value, not the dropped one');
  assert.deepEqual(got.slice(0, 4).map((g) => g.wall), oldWall.slice(0, 4), 'kept points keep their wall times');
});
