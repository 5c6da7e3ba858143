/**
 * Sweeps over a real job queue (BullMQ on a redis-server of the test's own): two `gta worker`
 * processes run a miniature sweep that writes the same report as a local sweep; the password never
 * shows; payloads cannot reach outside a worker's folders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './helpers/tiny.js';
import { gta } from './helpers/cli.js';
import { startRedis } from './helpers/redis.js';
import { jsonl, logLines, startGta, stopGta, withoutTime, writeSweep } from './helpers/queue.js';

test('compare-baselines --queue with two workers: the same compare.jsonl, curves and stats as a local sweep, no checkpoints copied, the password never shown', async () => {
  const dir = tmpDir();
  const local = writeSweep(dir, 'local.yaml', { out: path.join(dir, 'local') });
  const queued = writeSweep(dir, 'queued.yaml', { out: path.join(dir, 'queued') });
  const l = gta(['compare-baselines', '--config', local, '--log-level', 'warn'], dir);
  assert.equal(l.code, 0, l.stderr);

  const redis = await startRedis(dir);
  // one worker takes the password from the URL, the other from the environment
  const w1 = startGta(['worker', '--queue', redis.url, '--allow', dir, '--runs', path.join(dir, 'w1')], dir);
  const w2 = startGta(['worker', '--queue', `redis://127.0.0.1:${redis.port}`, '--allow', dir, '--runs', path.join(dir, 'w2')], dir, { GTA_REDIS_PASSWORD: redis.password });
  try {
    await Promise.all([w1.waitFor(/worker ready/), w2.waitFor(/worker ready/)]);
    const c = startGta(['compare-baselines', '--config', queued, '--queue', redis.url], dir);
    assert.equal(await c.exited, 0, c.stderr());
    for (const f of ['compare.jsonl', 'curves.jsonl', 'stats.jsonl']) {
      assert.deepEqual(withoutTime(jsonl(path.join(dir, 'queued', f))), withoutTime(jsonl(path.join(dir, 'local', f))), f);
    }
    for (const run of fs.readdirSync(path.join(dir, 'queued', 'runs'))) {
      const files = fs.readdirSync(path.join(dir, 'queued', 'runs', run)).sort();
      assert.deepEqual(files, ['config.resolved.yaml', 'metrics.jsonl', 'predictions.jsonl', 'run.json', 'summary.json', ...(run.includes('-rl-') ? ['samples.jsonl'] : [])].sort(), run);
    }
    const done = [w1, w2].map((w) => logLines(w.stderr(), 'job done').length);
    assert.deepEqual(done.reduce((a, b) => a + b), 4);
    assert.ok(done.every((n) => n >= 1), `each worker ran jobs: ${done}`);
    assert.match(c.stderr(), /redis:\/\/:\*\*\*@127\.0\.0\.1/);
    for (const out of [c.stderr(), c.stdout(), w1.stderr(), w2.stderr()]) assert.ok(!out.includes(redis.password), 'the password is never printed');
  } finally {
    await Promise.all([stopGta(w1), stopGta(w2)]);
    await redis.stop();
  }
});

test('a worker runs no job that reaches outside its folders: ../ and absolute paths, a link out, a bad run name, an option for an override, an unknown key; each fails once with one line', async () => {
  const { Queue, Job } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const { QUEUE_NAME, QUEUE_PREFIX } = await import('../src/queue/redis.js');
  const dir = tmpDir();
  writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep') });
  const text = fs.readFileSync(path.join(dir, 'tiny-sft.yaml'), 'utf8');
  const outside = tmpDir('gta-outside-');
  fs.writeFileSync(path.join(outside, 'train.csv'), 'text,label\na,b\n');
  fs.symlinkSync(outside, path.join(dir, 'link'));
  const redis = await startRedis(dir);
  const w = startGta(['worker', '--queue', redis.url, '--allow', dir, '--runs', path.join(dir, 'w')], dir);
  const client = new Redis({ port: redis.port, password: redis.password, maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE_NAME, { connection: client, prefix: QUEUE_PREFIX });
  const job = (over: Record<string, unknown>) => ({ v: 1, sweep: 'evil', run: 'r', config_file: 'evil.yaml', config_text: text, overrides: [], ...over });
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['dotdot', job({ overrides: [`data.train_file=${path.relative(dir, path.join(outside, 'train.csv'))}`] }), /^data\.train_file: \.\.\/.* is outside the folders this worker may read/],
    ['absolute', job({ overrides: ['data.dev_file=/etc/passwd'] }), /^data\.dev_file: \/etc\/passwd is outside the folders this worker may read/],
    ['link', job({ overrides: [`data.test_file=${path.join(dir, 'link', 'train.csv')}`] }), /^data\.test_file: .*link\/train\.csv is outside/],
    ['init', job({ config_text: text.replace('init: scratch', `init: ${outside}`) }), /^init: .* is outside the folders this worker may read/],
    ['shared', job({ shared_dir: outside }), /^shared_dir: .* is outside the folders this worker may write/],
    ['name', job({ run: '../../escape' }), /not a gta run job: run: letters, digits/],
    ['option', job({ overrides: ['--resume=/etc'] }), /not a gta run job: overrides\.0: key\.path=value/],
    ['key', job({ cmd: 'rm -rf /' }), /not a gta run job: \(top level\): Unrecognized key/],
    ['schema', job({ overrides: ['train.steps=-1'] }), /^evil\.yaml: --set train\.steps|^--set train\.steps: train\.steps: /],
  ];
  try {
    await w.waitFor(/worker ready/);
    for (const [id, data] of cases) await queue.add('train', data, { jobId: id, attempts: 3 });
    for (const [id, , expected] of cases) {
      for (let i = 0; (await queue.getJobState(id)) !== 'failed'; i++) {
        assert.ok(i < 600, `${id} did not fail`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const j = (await Job.fromId(queue, id))!;
      assert.match(j.failedReason, expected, id);
      assert.ok(!j.failedReason.includes('\n'), `${id}: one line`);
      assert.equal(j.attemptsMade, 1, `${id}: not retried`);
    }
    assert.equal(logLines(w.stderr(), 'job refused').length, cases.length, 'each refused once');
    assert.equal(logLines(w.stderr(), 'job started').length, 0, 'no run was started');
    assert.deepEqual(fs.readdirSync(outside).sort(), ['train.csv'], 'nothing written outside');
  } finally {
    await queue.close();
    client.disconnect();
    await stopGta(w);
    await redis.stop();
  }
});

test('a wrong password, an unreachable server and a bad URL are one line each, without the password', async () => {
  const dir = tmpDir();
  const redis = await startRedis(dir);
  try {
    const secret = 'Zq9secretXy';
    const wrong = gta(['worker', '--queue', `redis://:${secret}@127.0.0.1:${redis.port}/0`], dir);
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr.trim(), `gta: error: redis://:***@127.0.0.1:${redis.port}/0: authentication failed (wrong or missing password: give it in the URL or GTA_REDIS_PASSWORD)`);
    const none = gta(['worker', '--queue', `redis://127.0.0.1:${redis.port}`], dir);
    assert.match(none.stderr.trim(), /^gta: error: redis:\/\/127\.0\.0\.1:\d+\/0: authentication failed/);
    await redis.stop();
    const refused = gta(['worker', '--queue', `redis://:${secret}@127.0.0.1:${redis.port}`], dir);
    assert.equal(refused.stderr.trim(), `gta: error: redis://:***@127.0.0.1:${redis.port}/0: connection refused (is redis-server running there, on that port?)`);
    const bad = gta(['compare-baselines', '--config', 'x.yaml', '--queue', `http://:${secret}@host`], dir);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim(), 'gta: error: --queue http://:***@host:6379/0: only redis:// URLs are supported (redis://[user:password@]host:port[/db])');
    for (const r of [wrong, refused, bad]) assert.ok(!(r.stdout + r.stderr).includes(secret));
  } finally {
    await redis.stop();
  }
});
