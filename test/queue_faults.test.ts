/**
 * Faults of a sweep over the queue, each on a real redis-server: a worker killed with SIGKILL mid-run,
 * the coordinator killed and started again, Redis killed and restarted from its append-only file, and
 * a job whose config is bad.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers/tiny.js';
import { gta } from './helpers/cli.js';
import { startRedis } from './helpers/redis.js';
import { jsonl, logLines, startGta, stopGta, until, withoutTime, writeSweep } from './helpers/queue.js';

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
const status = (run: string) => (fs.existsSync(path.join(run, 'run.json')) ? readJson(path.join(run, 'run.json')).status : null);
const checkpointStep = (run: string) => {
  const f = path.join(run, 'checkpoints', 'latest', 'trainer_state.json');
  return fs.existsSync(f) ? readJson(f).step : 0;
};
/** Per run, how many times a worker ran it to completion (trained or resumed; a finished run found again is 'skipped'). */
const completions = (logs: string[]) => {
  const n: Record<string, number> = {};
  for (const l of logs.flatMap((s) => logLines(s, 'job done'))) if (l.action !== 'skipped') n[String(l.run)] = (n[String(l.run)] ?? 0) + 1;
  return n;
};
const LONG = ['train.steps=150', 'train.eval_every=50', 'train.checkpoint_every=10', 'train.log_every=10', 'data.name=tiny', 'train.batch_size=16', 'model.max_seq_len=48'];

test('a worker killed with SIGKILL mid-run: its run stops, another worker resumes it from the checkpoint, and its metrics equal an uninterrupted run\'s', async () => {
  const dir = tmpDir();
  const ref = writeSweep(dir, 'ref.yaml', { out: path.join(dir, 'ref'), modes: ['sft'], seeds: [1], set: LONG });
  const cfg = writeSweep(dir, 'shared.yaml', { out: path.join(dir, 'shared'), modes: ['sft'], seeds: [1], set: LONG });
  const r = gta(['compare-baselines', '--config', ref, '--log-level', 'warn'], dir);
  assert.equal(r.code, 0, r.stderr);
  const redis = await startRedis(dir);
  const worker = (n: number) => startGta(['worker', '--queue', redis.url, '--allow', dir, '--runs', path.join(dir, `w${n}`), '--stall-s', '2'], dir);
  const w1 = worker(1);
  let w2: ReturnType<typeof worker> | undefined;
  const c = startGta(['compare-baselines', '--config', cfg, '--queue', redis.url, '--shared'], dir);
  const run = path.join(dir, 'shared', 'runs', 'tiny-sft-seed1');
  try {
    await until(() => checkpointStep(run) >= 20, 'a checkpoint at step 20');
    w1.proc.kill('SIGKILL');
    // its child, left without a parent, stops at its next step and checkpoints there
    await until(() => status(run) === 'interrupted', 'the orphaned run to stop');
    w2 = worker(2);
    assert.equal(await c.exited, 0, c.stderr());
    const info = readJson(path.join(run, 'run.json'));
    assert.equal(info.status, 'finished');
    assert.equal(info.resumes.length, 1);
    assert.ok(info.resumes[0].from_step >= 20, JSON.stringify(info.resumes));
    assert.deepEqual(logLines(w2.stderr(), 'job done').map((l) => l.action), ['resumed']);
    assert.deepEqual(withoutTime(jsonl(path.join(run, 'metrics.jsonl'))), withoutTime(jsonl(path.join(dir, 'ref', 'runs', 'tiny-sft-seed1', 'metrics.jsonl'))));
    assert.deepEqual(withoutTime(jsonl(path.join(dir, 'shared', 'compare.jsonl'))), withoutTime(jsonl(path.join(dir, 'ref', 'compare.jsonl'))));
  } finally {
    await Promise.all([stopGta(c), stopGta(w1), ...(w2 ? [stopGta(w2)] : [])]);
    await redis.stop();
  }
});

test('the coordinator killed and started again: it re-attaches to the sweep, collects what finished meanwhile, and no run is trained twice', async () => {
  const dir = tmpDir();
  const cfg = writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep') });
  const redis = await startRedis(dir);
  const w = startGta(['worker', '--queue', redis.url, '--allow', dir, '--runs', path.join(dir, 'w')], dir);
  try {
    const first = startGta(['compare-baselines', '--config', cfg, '--queue', redis.url], dir);
    const runs = path.join(dir, 'sweep', 'runs');
    const finished = () => (fs.existsSync(runs) ? fs.readdirSync(runs).filter((d) => status(path.join(runs, d)) === 'finished') : []);
    await until(() => finished().length >= 1, 'a finished run');
    first.proc.kill('SIGKILL');
    await first.exited;
    const before = Object.fromEntries(finished().map((d) => [d, fs.statSync(path.join(runs, d, 'metrics.jsonl')).mtimeMs]));
    assert.ok(Object.keys(before).length < 4, 'killed mid-sweep');
    // its sweep lock is left behind by a dead process: taken over at once
    const again = startGta(['compare-baselines', '--config', cfg, '--queue', redis.url], dir);
    assert.equal(await again.exited, 0, again.stderr());
    assert.equal(logLines(again.stderr(), 'jobs queued; waiting for workers (gta worker --queue ...)')[0].jobs, 4 - Object.keys(before).length);
    for (const [d, mtime] of Object.entries(before)) assert.equal(fs.statSync(path.join(runs, d, 'metrics.jsonl')).mtimeMs, mtime, `${d} is not written again`);
    assert.deepEqual(completions([w.stderr()]), { 'tiny-sft-seed1': 1, 'tiny-sft-seed2': 1, 'tiny-rl-seed1': 1, 'tiny-rl-seed2': 1 });
    assert.equal(finished().length, 4);
    assert.equal(jsonl(path.join(dir, 'sweep', 'compare.jsonl')).filter((row) => row.arm === 'sft' || row.arm === 'rl').length, 2);
  } finally {
    await stopGta(w);
    await redis.stop();
  }
});

test('Redis killed and restarted with appendonly mid-sweep: no job lost, none run twice to completion', async () => {
  const dir = tmpDir();
  const cfg = writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep') });
  const redis = await startRedis(dir, { appendonly: true });
  const worker = (n: number) => startGta(['worker', '--queue', redis.url, '--allow', dir, '--runs', path.join(dir, 'sweep-w'), '--stall-s', '10'], dir, { N: String(n) });
  const ws = [worker(1), worker(2)];
  const c = startGta(['compare-baselines', '--config', cfg, '--queue', redis.url, '--shared'], dir);
  try {
    await until(() => ws.some((w) => logLines(w.stderr(), 'job done').length >= 1), 'a job done');
    const doneBefore = ws.flatMap((w) => logLines(w.stderr(), 'job done')).length;
    await redis.restart();
    assert.ok(doneBefore < 4, 'restarted mid-sweep');
    assert.equal(await c.exited, 0, c.stderr());
    const runs = path.join(dir, 'sweep', 'runs');
    assert.deepEqual(fs.readdirSync(runs).filter((d) => status(path.join(runs, d)) === 'finished').sort(), ['tiny-rl-seed1', 'tiny-rl-seed2', 'tiny-sft-seed1', 'tiny-sft-seed2']);
    assert.deepEqual(completions(ws.map((w) => w.stderr())), { 'tiny-sft-seed1': 1, 'tiny-sft-seed2': 1, 'tiny-rl-seed1': 1, 'tiny-rl-seed2': 1 });
    for (const d of fs.readdirSync(runs)) assert.equal(readJson(path.join(runs, d, 'run.json')).resumes, undefined, `${d} ran once, from the start`);
  } finally {
    await Promise.all([stopGta(c), ...ws.map(stopGta)]);
    await redis.stop();
  }
});

test('a job whose config is bad fails once with the one-line config error naming the file, and the sweep reports it and the others', async () => {
  const dir = tmpDir();
  const bad = path.join(dir, 'bad-tiny.yaml');
  const cfg = writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep'), seeds: [1], arms: `arms:\n  - { name: sft, mode: sft }\n  - { name: bad, mode: sft, config_template: '${path.join(dir, 'bad-{dataset}.yaml')}' }` });
  fs.writeFileSync(bad, `${fs.readFileSync(path.join(dir, 'tiny-sft.yaml'), 'utf8')}gta: { lambda_sfx: 1 }\n`);
  const redis = await startRedis(dir);
  const w = startGta(['worker', '--queue', redis.url, '--allow', dir, '--runs', path.join(dir, 'w')], dir);
  try {
    const c = startGta(['compare-baselines', '--config', cfg, '--queue', redis.url], dir);
    assert.equal(await c.exited, 1, c.stderr());
    const line = c.stderr().trim().split('\n').pop()!;
    const error = `${bad}:\\d+:\\d+: gta\\.lambda_sfx: unknown key \\(did you mean gta\\.lambda_sft\\?\\)`;
    assert.match(line, new RegExp(`^gta: error: 1 of 2 runs failed: ${path.join(dir, 'sweep', 'runs', 'tiny-bad-seed1')}: ${error}; the report covers the others$`));
    assert.equal(logLines(w.stderr(), 'job refused').length, 1, 'tried once');
    assert.deepEqual(jsonl(path.join(dir, 'sweep', 'compare.jsonl')).map((row) => row.arm), ['majority', 'bow-logreg', 'sft']);
  } finally {
    await stopGta(w);
    await redis.stop();
  }
});
