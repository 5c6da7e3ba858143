/**
 * Hostile jobs and odd data (issue 28): what an attacker's queue job or a careless user's file used to
 * get through, each refused now with one line and nothing half-done left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { loadConfig } from '../src/config/load.js';
import { TrainConfigSchema } from '../src/config/schema.js';
import { openResume } from '../src/cli/run_lifecycle.js';
import { loadDataset } from '../src/data/load.js';
import { readTable } from '../src/data/read_table.js';
import { tmpDir } from './helpers/tiny.js';
import { withEnv } from './helpers/env.js';
import { childEnv } from '../src/compare/child.js';
import { configHash } from '../src/run/config_identity.js';
import { GTA, gta, tinyConfig } from './helpers/cli.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { logLines, startGta, stopGta, writeSweep, type Started } from './helpers/queue.js';

/** Tiny, quick training overrides for a queue job of the tiny synthetic task. */
const QUICK = ['train.steps=4', 'train.eval_every=2', 'train.log_every=2', 'train.checkpoint_every=2', 'data.name=tiny', 'train.batch_size=8', 'eval.batch_size=50'];

/** A worker on a redis-server of this test's own, and a queue to hand it jobs; all stopped after `f`. */
async function withWorker(
  dir: string,
  f: (q: { add(id: string, data: Record<string, unknown>): Promise<void>; settle(id: string): Promise<{ state: string; reason: string; result: unknown }>; worker: Started; redis: TestRedis }) => Promise<void>,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<void> {
  const { Queue, Job } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const { QUEUE_NAME, QUEUE_PREFIX } = await import('../src/queue/redis.js');
  const redis = await startRedis(dir);
  const worker = startGta(['worker', '--queue', redis.url, '--allow', dir, '--runs', path.join(dir, 'w'), '--log-level', 'info', ...args], dir, env);
  const client = new Redis({ port: redis.port, password: redis.password, maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE_NAME, { connection: client, prefix: QUEUE_PREFIX });
  try {
    await worker.waitFor(/worker ready/);
    await f({
      add: async (id, data) => void (await queue.add('train', data, { jobId: id, attempts: 2 })),
      settle: async (id) => {
        for (let i = 0; ; i++) {
          const state = await queue.getJobState(id);
          if (state === 'completed' || state === 'failed') {
            const j = (await Job.fromId(queue, id))!;
            return { state, reason: j.failedReason ?? '', result: j.returnvalue };
          }
          assert.ok(i < 2400, `${id} did not settle: ${worker.stderr()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      },
      worker,
      redis,
    });
  } finally {
    await queue.close();
    client.disconnect();
    await stopGta(worker);
    await redis.stop();
  }
}

/** A queue job of the tiny sft config written by writeSweep. */
function runJob(dir: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return { v: 1, sweep: 'hostile', run: 'r', config_file: 'tiny-sft.yaml', config_text: fs.readFileSync(path.join(dir, 'tiny-sft.yaml'), 'utf8'), overrides: QUICK, ...over };
}

/** `f` throws an error whose message (without the error's name) matches `re`. */
function throwsLine(f: () => unknown, re: RegExp, what?: string): void {
  assert.throws(f, (e: Error) => {
    assert.match(e.message, re, what);
    return true;
  });
}

function configFile(text: string): string {
  const f = path.join(tmpDir(), 'c.yaml');
  fs.writeFileSync(f, text);
  return f;
}

// ---- 1. prototype pollution ----

test('1: --set and config keys named __proto__, constructor or prototype are refused with one line, and nothing reaches Object.prototype', () => {
  const f = configFile('data:\n  name: sst2\n');
  const cases: [string[], RegExp][] = [
    [['__proto__.NODE_OPTIONS=x'], /^--set __proto__\.NODE_OPTIONS: '__proto__' cannot be a config key$/],
    [['constructor.prototype.polluted=1'], /^--set constructor\.prototype\.polluted: 'constructor' cannot be a config key$/],
    [['train.__proto__.polluted=1'], /^--set train\.__proto__\.polluted: '__proto__' cannot be a config key$/],
    [['data={__proto__: {polluted: 1}, name: sst2}'], /^--set data\.__proto__: '__proto__' cannot be a config key$/],
  ];
  for (const [set, expected] of cases) throwsLine(() => loadConfig(TrainConfigSchema, f, set), expected, set[0]);
  throwsLine(() => loadConfig(TrainConfigSchema, configFile('data:\n  name: sst2\n  __proto__: {polluted: 1}\n')), /c\.yaml:3:3: data\.__proto__: '__proto__' cannot be a config key$/);
  const probe = {} as Record<string, unknown>;
  assert.equal(probe.NODE_OPTIONS, undefined);
  assert.equal(probe.polluted, undefined);
  // an ordinary override still works
  assert.equal(loadConfig(TrainConfigSchema, f, ['train.steps=3']).config.train.steps, 3);
});

test('1: a worker refuses a job whose override walks into __proto__, and goes on running the next job', async () => {
  const dir = tmpDir();
  writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep') });
  await withWorker(dir, async ({ add, settle, worker }) => {
    await add('evil', runJob(dir, { run: 'evil', overrides: [...QUICK, '__proto__.NODE_OPTIONS=x'] }));
    await add('good', runJob(dir, { run: 'good' }));
    const evil = await settle('evil');
    assert.equal(evil.state, 'failed');
    assert.match(evil.reason, /__proto__/);
    assert.ok(!evil.reason.includes('\n'));
    const good = await settle('good');
    assert.equal(good.state, 'completed', `the next job runs: ${good.reason}`);
    assert.equal(logLines(worker.stderr(), 'job refused').length, 1);
  });
});

// ---- 8. a FIFO as a data file ----

test('8: a FIFO (or a folder, or a device) as train_file, labels or config is refused at once with one line, and no run directory is made', () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  const fifo = path.join(dir, 'train.csv.fifo');
  execFileSync('mkfifo', [fifo]);
  const cases: [string[], RegExp][] = [
    [['--config', cfg, '--set', `data.train_file=${fifo}`, '--set', 'data.format=csv'], /train\.csv\.fifo: is a named pipe \(FIFO\), not a regular file$/],
    [['--config', cfg, '--set', 'data.train_file=/dev/zero', '--set', 'data.format=csv'], /^gta: error: \/dev\/zero: is a device, not a regular file$/],
    [['--config', cfg, '--set', `data.dev_file=${dir}`, '--set', 'data.format=csv'], /: is a folder, not a regular file$/],
    [['--config', fifo], /train\.csv\.fifo: is a named pipe \(FIFO\), not a regular file$/],
  ];
  for (const [args, expected] of cases) {
    const r = spawnSync(process.execPath, [GTA, 'train', ...args, '--log-level', 'warn'], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.trim(), expected);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'runs')) || fs.readdirSync(path.join(dir, 'runs')).length === 0, 'no run directory');
});

// ---- 9. stack traces instead of one line ----

test('9: 200,000 distinct integer labels, or 50,000 named ones, are one line naming the file and the limit; no run directory', () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  for (const [name, label] of [['ints', (i: number) => String(i)], ['names', (i: number) => `class${i}`]] as const) {
    const file = path.join(dir, `${name}.csv`);
    const rows = name === 'ints' ? 200_000 : 50_000;
    fs.writeFileSync(file, 'text,label\n' + Array.from({ length: rows }, (_, i) => `t ${i},${label(i)}`).join('\n') + '\n');
    const r = gta(['train', '--config', cfg, '--set', `data.train_file=${file}`, '--log-level', 'warn'], dir);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), new RegExp(`^gta: error: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (200000|50000) distinct labels; at most 1000 classes are supported \\(is data\\.label_column 'label' the label column\\?\\)$`));
  }
  assert.ok(!fs.existsSync(path.join(dir, 'runs')), 'no run directory');
});

test('9: a garbage run.json (x{, null, [1,2,3], a bad status) is one line for train --resume, and gta runs and gta report go on', () => {
  const dir = tmpDir();
  const garbage = { text: 'x{', null: 'null', list: '[1,2,3]', status: '{"status":"done","mode":"sft","seed":1}' };
  for (const [name, text] of Object.entries(garbage)) {
    const run = path.join(dir, 'runs', name);
    fs.mkdirSync(path.join(run, 'checkpoints', 'latest'), { recursive: true });
    fs.writeFileSync(path.join(run, 'checkpoints', 'latest', 'trainer_state.json'), '{"step": 1}');
    fs.writeFileSync(path.join(run, 'run.json'), text);
    throwsLine(() => openResume(run, 'train', TrainConfigSchema, []), new RegExp(`runs/${name}/run\\.json: not (valid JSON|a gta run\\.json: )[^\\n]*$`), name);
  }
  const resumed = gta(['train', '--resume', path.join(dir, 'runs', 'null')], dir);
  assert.equal(resumed.code, 2, resumed.stderr);
  assert.match(resumed.stderr.trim(), /^gta: error: .*runs\/null\/run\.json: not a gta run\.json: \(top level\): /);
  assert.equal(resumed.stderr.trim().split('\n').length, 1, resumed.stderr);
  assert.equal(fs.readFileSync(path.join(dir, 'runs', 'list', 'run.json'), 'utf8'), '[1,2,3]', 'left as it was');
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    throwsLine(() => openResume('latest', 'train', TrainConfigSchema, []), /^runs: no unfinished run with a checkpoint to resume$/);
  } finally {
    process.chdir(cwd);
  }
  const runs = gta(['runs', path.join(dir, 'runs')], dir);
  assert.equal(runs.code, 0, runs.stderr);
  for (const name of Object.keys(garbage)) assert.match(runs.stdout, new RegExp(`^${name}\\s+\\?\\s+–\\s+bad run\\.json`, 'm'), runs.stdout);
  const report = gta(['report', path.join(dir, 'runs', 'list'), path.join(dir, 'runs', 'null'), '--out', path.join(dir, 'rep')], dir);
  assert.equal(report.code, 2, report.stderr);
  assert.match(report.stderr.trim(), /^gta: error: none of the 2 runs has finished$/);
});

// ---- 6. a failed resume damages a finished run ----

/** Every file under `dir` and a hash of its content: what "changes nothing" compares. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!f.isFile()) continue;
    const p = path.join(f.parentPath, f.name);
    out[path.relative(dir, p)] = crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  return out;
}

test('6: resuming a finished run says it is finished; a resume whose checkpoint is truncated changes nothing', () => {
  const dir = tmpDir();
  const run = path.join(dir, 'run');
  const trained = gta(['train', '--config', tinyConfig(dir), '--run-dir', run, '--set', 'train.steps=4', '--set', 'train.checkpoint_every=2', '--set', 'train.eval_every=2', '--log-level', 'warn'], dir);
  assert.equal(trained.code, 0, trained.stderr);
  const optimizer = path.join(run, 'checkpoints', 'latest', 'optimizer.safetensors');
  fs.truncateSync(optimizer, Math.floor(fs.statSync(optimizer).size / 2));
  const before = snapshot(run);
  const finished = gta(['train', '--resume', run, '--log-level', 'warn'], dir);
  assert.equal(finished.code, 2, finished.stderr);
  assert.equal(finished.stderr.trim(), `gta: error: ${run}: the run is finished (its results are in summary.json); nothing to resume`);
  assert.deepEqual(snapshot(run), before, 'the finished run is untouched');
  // the same run as if it had been interrupted: the truncated optimizer state is found before anything changes
  const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
  fs.writeFileSync(path.join(run, 'run.json'), JSON.stringify({ ...info, status: 'interrupted', step: 4 }));
  const interrupted = snapshot(run);
  const broken = gta(['train', '--resume', run, '--log-level', 'warn'], dir);
  assert.equal(broken.code, 2, broken.stderr);
  assert.equal(broken.stderr.trim(), `gta: error: ${optimizer}: corrupted or truncated (checksum mismatch)`);
  assert.deepEqual(snapshot(run), interrupted, 'a resume that cannot start changes nothing');
});

// ---- 5. meaningless runs ----

test('5: a dev split carved to nothing, or a training split of one class, is refused before the run directory exists', () => {
  const dir = tmpDir();
  const noDev = fs.readFileSync(tinyConfig(dir), 'utf8').replace(/^ {2}(dev|test)_file: .*\n/gm, '');
  const cfg = path.join(dir, 'nodev.yaml');
  fs.writeFileSync(cfg, noDev);
  const hundred = path.join(dir, 'hundred.csv');
  fs.writeFileSync(hundred, 'text,label\n' + Array.from({ length: 100 }, (_, i) => `good film ${i},class${i}`).join('\n') + '\n');
  const oneClass = path.join(dir, 'one.csv');
  fs.writeFileSync(oneClass, 'text,label\n' + Array.from({ length: 50 }, (_, i) => `good film ${i},positive`).join('\n') + '\n');
  const cases: [string, RegExp][] = [
    [hundred, /hundred\.csv: data\.dev_fraction 0\.1 of 100 rows in 100 classes carves no dev example \(each class keeps at least one row in train\); give data\.dev_file, or more rows per class$/],
    [oneClass, /one\.csv: all \d+ training examples have the label 'positive'; a classifier needs examples of at least two classes$/],
  ];
  for (const [file, expected] of cases) {
    const r = gta(['train', '--config', cfg, '--set', `data.train_file=${file}`, '--log-level', 'warn'], dir);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim(), expected);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'runs')), 'no run directory');
});

test('5: a JSONL row with a repeated key is an error naming the line; labels that differ only by case are a warning naming both', async () => {
  const dir = tmpDir();
  const jsonl = path.join(dir, 'dup.jsonl');
  fs.writeFileSync(jsonl, '{"text": "good", "label": "pos"}\n{"text": "bad", "label": "neg", "label": "pos"}\n');
  await assert.rejects(readTable(jsonl), (e: Error) => {
    assert.equal(e.message, `${jsonl}:2: key 'label' appears twice in one object (JSON keeps only the last)`);
    return true;
  });
  const csv = path.join(dir, 'case.csv');
  fs.writeFileSync(csv, 'text,label\ngood,Positive\nfine,positive\nbad,negative\nawful,negative\n');
  const data = await loadDataset({ train_file: csv, dev_file: csv, text_column: 'text', label_column: 'label', dev_fraction: 0.1 }, 0);
  assert.deepEqual(data.warnings, ["labels 'Positive' and 'positive' differ only by case; they are different classes"]);
});

// ---- 10. messages ----

test('10: config messages: --set into a list blames the flag, .inf and .nan read as YAML, a huge prompt template is refused', () => {
  const withLabels = configFile('data:\n  name: sst2\n  labels: [a, b]\n');
  throwsLine(() => loadConfig(TrainConfigSchema, withLabels, ['data.labels.0=x']), /^--set data\.labels\.0: 'labels' is a list; set it whole \(--set data\.labels=\[a, b\]\)$/);
  throwsLine(() => loadConfig(TrainConfigSchema, configFile('data:\n  name: sst2\n'), ['data.labels.0=x']), /^--set data\.labels\.0: data\.labels: expected array, got a mapping$/);
  throwsLine(() => loadConfig(TrainConfigSchema, configFile('data:\n  name: sst2\ntrain:\n  optim:\n    lr: .inf\n')), /c\.yaml:5:5: train\.optim\.lr: expected a finite number, got \.inf$/);
  throwsLine(() => loadConfig(TrainConfigSchema, configFile('data:\n  name: sst2\n'), ['train.steps=.nan']), /^--set train\.steps: train\.steps: expected a finite number, got \.nan$/);
  throwsLine(() => loadConfig(TrainConfigSchema, configFile('data:\n  name: sst2\n'), [`prompt.template=${'x'.repeat(200_000)} {text}`]), /^--set prompt\.template: prompt\.template: Too big: expected string to have <=100000 characters$/);
});

test('10: a prompt that leaves no room for text says so instead of advising a negative max_text_tokens', () => {
  const dir = tmpDir();
  const r = gta(['train', '--config', tinyConfig(dir), '--set', `prompt.template=${'the movie was '.repeat(20)}{text}`, '--log-level', 'warn'], dir);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /^gta: error: prompt\.template: the prompt alone is \d+ tokens and the answer \d+, leaving no room for text in the model's max_seq_len 32; shorten prompt\.template or raise model\.max_seq_len$/);
});

test('10: UTF-16 text without a byte-order mark (or with one) is named as UTF-16, not as a field-count error', async () => {
  const dir = tmpDir();
  const text = 'text,label\ngood film,positive\nbad film,negative\n';
  const le = path.join(dir, 'le.csv');
  fs.writeFileSync(le, Buffer.from(text, 'utf16le'));
  const be = path.join(dir, 'be.csv');
  fs.writeFileSync(be, Buffer.from(text, 'utf16le').swap16());
  const bom = path.join(dir, 'bom.csv');
  fs.writeFileSync(bom, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]));
  for (const [file, order] of [[le, 'little-endian'], [be, 'big-endian'], [bom, 'little-endian']]) {
    await assert.rejects(readTable(file), (e: Error) => {
      assert.equal(e.message, `${file}: looks like UTF-16 (${order}) text, not UTF-8; save the file as UTF-8`);
      return true;
    });
  }
});

test('10: a worker\'s training children do not get GTA_REDIS_PASSWORD', () => {
  withEnv('GTA_REDIS_PASSWORD', 'secret', () => {
    const env = childEnv({ GTA_THREADS: '1' });
    assert.equal(env.GTA_REDIS_PASSWORD, undefined);
    assert.equal(env.GTA_THREADS, '1');
    assert.equal(env.PATH, process.env.PATH);
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.env.GTA_REDIS_PASSWORD))'], { env, encoding: 'utf8' });
    assert.equal(r.stdout, 'undefined');
  });
});

test('10: the folder a checkpoint write killed midway leaves (latest.tmp-<pid>) is removed when the run resumes', () => {
  const dir = tmpDir();
  const run = path.join(dir, 'run');
  const args = ['train', '--config', tinyConfig(dir), '--run-dir', run, '--set', 'train.steps=6', '--set', 'train.checkpoint_every=2', '--set', 'train.eval_every=100', '--log-level', 'warn'];
  const crashed = spawnSync(process.execPath, [GTA, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, GTA_CRASH_AT: 'checkpoint:2' } });
  assert.equal(crashed.signal, 'SIGKILL', crashed.stderr);
  const leftovers = () => fs.readdirSync(path.join(run, 'checkpoints')).filter((e) => /\.(tmp|old)-\d+$/.test(e));
  assert.equal(leftovers().length, 1, 'the killed write left its folder');
  const resumed = gta(['train', '--resume', run, '--log-level', 'warn'], dir);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(leftovers(), []);
});

// ---- 2. stale runs ----

test('2: a local sweep run again with a changed --set refuses the runs of the old config, naming what differs; --force trains them again', () => {
  const dir = tmpDir();
  const out = path.join(dir, 'sweep');
  const cfg = writeSweep(dir, 'sweep.yaml', { out, modes: ['sft'], seeds: [1], set: ['train.steps=4', 'train.eval_every=2', 'train.log_every=2', 'data.name=tiny', 'train.batch_size=8'] });
  const first = gta(['compare-baselines', '--config', cfg, '--log-level', 'warn'], dir);
  assert.equal(first.code, 0, first.stderr);
  const run = path.join(out, 'runs', 'tiny-sft-seed1');
  const hash = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).config_sha256;
  assert.match(hash, /^[0-9a-f]{64}$/);
  const changed = gta(['compare-baselines', '--config', cfg, '--set', 'train.optim.lr=0.003', '--log-level', 'warn'], dir);
  assert.equal(changed.code, 2, changed.stderr);
  assert.equal(changed.stderr.trim(), `gta: error: ${run}: made with another config (train.optim.lr: 0.005 there, 0.003 now); give another output_dir, or --force to train them again`);
  assert.equal(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).config_sha256, hash, 'the old run is left as it was');
  const forced = gta(['compare-baselines', '--config', cfg, '--set', 'train.optim.lr=0.003', '--force', '--log-level', 'warn'], dir);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(fs.readFileSync(path.join(run, 'config.resolved.yaml'), 'utf8'), /lr: 0\.003/);
  assert.notEqual(JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8')).config_sha256, hash);
});

test('2: a worker answers "skipped" only for a finished run of the same config; one of another config is trained again', async () => {
  const dir = tmpDir();
  writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep') });
  await withWorker(dir, async ({ add, settle }) => {
    const action = async (id: string, overrides: string[]) => {
      await add(id, runJob(dir, { overrides }));
      const r = await settle(id);
      assert.equal(r.state, 'completed', r.reason);
      return (r.result as { action: string }).action;
    };
    assert.equal(await action('first', QUICK), 'trained');
    assert.equal(await action('same', QUICK), 'skipped');
    assert.equal(await action('changed', [...QUICK, 'train.optim.lr=0.003']), 'trained');
    assert.match(fs.readFileSync(path.join(dir, 'w', 'hostile', 'runs', 'r', 'config.resolved.yaml'), 'utf8'), /lr: 0\.003/);
  });
});

// ---- 3. reading outside the allowed folders ----

test('3: a job\'s child checks each data file where it opens it: a folder swapped for a link to elsewhere after the worker\'s check is refused', () => {
  const dir = tmpDir();
  const cfg = tinyConfig(dir);
  const outside = tmpDir('gta-outside-');
  fs.copyFileSync(path.join(dir, 'train.csv'), path.join(outside, 'train.csv'));
  // what the worker checked was dir/data/train.csv in a real folder; by the time the child reads it, data is a link out
  fs.symlinkSync(outside, path.join(dir, 'data'));
  const r = spawnSync(process.execPath, [GTA, 'train', '--config', cfg, '--set', `data.train_file=${path.join(dir, 'data', 'train.csv')}`, '--log-level', 'warn'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GTA_READ_ROOTS: JSON.stringify([fs.realpathSync(dir)]) },
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), /^gta: error: .*data\/train\.csv: .*data\/train\.csv is outside the folders this worker may read \(.*; it resolves to .*gta-outside-.*\/train\.csv\)$/);
  assert.ok(!fs.existsSync(path.join(dir, 'runs')), 'no run directory');
});

test('3: with --shared, a run to resume whose config.resolved.yaml reads outside the worker\'s folders is refused before a child starts', async () => {
  const dir = tmpDir();
  writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep') });
  const outside = tmpDir('gta-outside-');
  fs.writeFileSync(path.join(outside, 'secret.csv'), 'text,label\nsecret a,x\nsecret b,y\n');
  const shared = path.join(dir, 'shared');
  const run = path.join(shared, 'runs', 'r');
  fs.mkdirSync(path.join(run, 'checkpoints', 'latest'), { recursive: true });
  fs.writeFileSync(path.join(run, 'checkpoints', 'latest', 'trainer_state.json'), '{"step": 2}');
  const jobConfig = path.join(dir, 'tiny-sft.yaml');
  const { config, resolvedYaml } = loadConfig(TrainConfigSchema, jobConfig, QUICK);
  // someone with write access to the shared folder: the job's own config hash, another train_file
  fs.writeFileSync(path.join(run, 'config.resolved.yaml'), resolvedYaml.replace(/train_file: .*/, `train_file: ${path.join(outside, 'secret.csv')}`));
  fs.writeFileSync(path.join(run, 'run.json'), JSON.stringify({ status: 'interrupted', mode: 'sft', seed: 5, config_sha256: configHash(config) }));
  await withWorker(dir, async ({ add, settle, worker }) => {
    await add('shared', runJob(dir, { shared_dir: shared }));
    const r = await settle('shared');
    assert.equal(r.state, 'failed');
    assert.match(r.reason, /config\.resolved\.yaml: data\.train_file: .*secret\.csv is outside the folders this worker may read/);
    assert.equal(logLines(worker.stderr(), 'job started').length, 0);
  });
});

// ---- 4. unbounded work ----

test('4: a batch size past any machine, or past the training data, is refused in one line before a run starts', () => {
  throwsLine(() => loadConfig(TrainConfigSchema, configFile('data:\n  name: sst2\n'), ['train.batch_size=1000000000']), /^--set train\.batch_size: train\.batch_size: Too big: expected number to be <=65536$/);
  const dir = tmpDir();
  const r = gta(['train', '--config', tinyConfig(dir), '--set', 'train.batch_size=5000', '--log-level', 'warn'], dir);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), /^gta: error: train\.batch_size: 5000 examples a step is more than the 600 training examples of .*train\.csv$/);
  assert.ok(!fs.existsSync(path.join(dir, 'runs')), 'no run directory');
});

test('4: a job with 300 overrides of 9 kB reaches its child (by file, not argv: no spawn E2BIG) and trains', async () => {
  const dir = tmpDir();
  writeSweep(dir, 'sweep.yaml', { out: path.join(dir, 'sweep') });
  // a YAML comment makes each override long without changing what it sets
  const long = Array.from({ length: 300 }, () => `train.steps=4 # ${'x'.repeat(9000)}`);
  await withWorker(dir, async ({ add, settle }) => {
    await add('long', runJob(dir, { overrides: [...QUICK, ...long] }));
    const r = await settle('long');
    assert.equal(r.state, 'completed', r.reason);
  });
});
