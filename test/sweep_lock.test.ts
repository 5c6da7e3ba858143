/**
 * Two coordinators on one sweep folder: the second is refused with one line naming the first (today's
 * failure was both running the same runs and one crashing on a run directory the other recreated),
 * locally and over the queue; a `gta train --resume` of a run being trained is refused the same way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tmpDir } from './helpers/tiny.js';
import { gta } from './helpers/cli.js';
import { startRedis } from './helpers/redis.js';
import { startGta, stopGta, until, writeSweep } from './helpers/queue.js';

const LONG = ['train.steps=150', 'train.eval_every=50', 'train.checkpoint_every=10', 'train.log_every=10', 'data.name=tiny', 'train.batch_size=16', 'model.max_seq_len=48'];
const holder = (dir: string) => path.join(dir, '.lock', 'holder.json');

test('two local compare-baselines on one sweep: the second is refused with one line, a resume of a running run too, and the first finishes', async () => {
  const dir = tmpDir();
  // long enough that the run is still training when the resume is tried
  const cfg = writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep'), modes: ['sft'], set: [...LONG, 'train.steps=600'] });
  const out = path.join(dir, 'sweep');
  const first = startGta(['compare-baselines', '--config', cfg, '--log-level', 'warn'], dir);
  try {
    await until(() => fs.existsSync(holder(out)), 'the sweep lock');
    const second = gta(['compare-baselines', '--config', cfg, '--log-level', 'warn'], dir);
    assert.equal(second.code, 75);
    assert.match(second.stderr, new RegExp(`^gta: error: ${out}: in use by gta compare-baselines --config ${cfg} \\(pid ${first.proc.pid} on ${os.hostname()}, since [0-9T:.-]+Z\\); a lock not refreshed for 5 minutes is taken over\\n$`));
    const run = path.join(out, 'runs', 'tiny-sft-seed1');
    await until(() => fs.existsSync(path.join(run, 'checkpoints', 'latest', 'trainer_state.json')) && fs.existsSync(holder(run)), 'a checkpoint of the first run');
    const resume = gta(['train', '--resume', run, '--log-level', 'warn'], dir);
    assert.equal(resume.code, 75, resume.stderr);
    assert.match(resume.stderr, new RegExp(`^gta: error: ${run}: in use by gta train \\(pid \\d+ on ${os.hostname()}, since .*\\); a lock not refreshed for 5 minutes is taken over\\n$`));
    assert.equal(await first.exited, 0, first.stderr());
    assert.ok(fs.existsSync(path.join(out, 'compare.jsonl')));
    assert.ok(!fs.existsSync(path.join(out, '.lock')), 'released at the end');
  } finally {
    await stopGta(first);
  }
});

test('two compare-baselines --queue on one sweep: the second is refused with one line, the first finishes', async () => {
  const dir = tmpDir();
  const cfg = writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep'), modes: ['sft'], seeds: [1], set: LONG });
  const out = path.join(dir, 'sweep');
  const redis = await startRedis(dir);
  const w = startGta(['worker', '--queue', redis.url, '--allow', dir, '--runs', path.join(dir, 'w')], dir);
  const first = startGta(['compare-baselines', '--config', cfg, '--queue', redis.url, '--log-level', 'warn'], dir);
  try {
    await until(() => fs.existsSync(holder(out)), 'the sweep lock');
    const second = gta(['compare-baselines', '--config', cfg, '--queue', redis.url, '--log-level', 'warn'], dir);
    assert.equal(second.code, 75);
    assert.match(second.stderr, new RegExp(`^gta: error: ${out}: in use by gta compare-baselines --config ${cfg} \\(pid ${first.proc.pid} on ${os.hostname()}, since .*\\); a lock not refreshed for 5 minutes is taken over\\n$`));
    assert.equal(await first.exited, 0, first.stderr());
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'runs', 'tiny-sft-seed1', 'run.json'), 'utf8')).status, 'finished');
  } finally {
    await Promise.all([stopGta(first), stopGta(w)]);
    await redis.stop();
  }
});
