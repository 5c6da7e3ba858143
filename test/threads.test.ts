/** The torch backend's thread choice: measured once per machine, cached, overridden by GTA_THREADS. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { builtVersion } from '../src/backend/torch/native.js';
import { BUSY_OTHERS, cacheFile, chooseThreads, fewestNearBest, type Calibrate } from '../src/backend/torch/threads.js';
import { otherProcesses } from '../src/backend/torch/busy_probe.js';
import { spawn } from 'node:child_process';
import { tmpDir } from './helpers/tiny.js';

/** A machine whose other processes are idle (the caching rules apart from how busy this one is now). */
const idle = () => () => 0;

/**
 * Calibration numbers of a 2-core machine where large work gains from a second thread and small work
 * does not: the caching tests below turn on when a measurement is taken, not on what it measures (the
 * first test times the real workloads), so they need not spend ~10 s of child processes on each.
 */
const timed: Calibrate = (n) => ({ large: 100 / n, small: 50 });
const twoCores = { skip: os.availableParallelism() > 1 ? false : 'one core' };

let built: { ok?: boolean } = {};
try {
  built = JSON.parse(fs.readFileSync(new URL('../../native/build/status.json', import.meta.url), 'utf8'));
} catch {
  // never built
}

test('threads: measured once and cached, GTA_THREADS and OMP_WAIT_POLICY win (small work on one passive thread)', { skip: built.ok ? false : 'the torch addon is not built' }, () => {
  const saved = { ...process.env };
  try {
    process.env.XDG_CACHE_HOME = tmpDir('gta-cache-');
    delete process.env.GTA_THREADS;
    delete process.env.OMP_WAIT_POLICY;
    const first = chooseThreads(builtVersion(), 0, idle);
    const cores = os.availableParallelism();
    if (cores === 1) return assert.equal(first.source, 'one core');
    assert.equal(first.source, 'measured');
    assert.equal(first.waitPolicy, 'PASSIVE', 'idle threads sleep by default');
    assert.ok(first.threads >= 1 && first.threads <= cores && first.small >= 1 && first.small <= cores);
    for (const w of ['large', 'small'] as const) assert.ok('1' in first.measured![w] && Object.values(first.measured![w]).every((ms) => ms > 0), JSON.stringify(first.measured));
    assert.ok(fs.existsSync(cacheFile()));
    const second = chooseThreads(builtVersion(), 0, idle);
    const { others: _others, ...firstChoice } = first;
    assert.deepEqual({ ...second, source: 'measured' }, firstChoice);
    assert.equal(second.source, 'cached');
    process.env.GTA_THREADS = '3';
    assert.deepEqual(chooseThreads(builtVersion()), { threads: 3, small: 1, waitPolicy: 'PASSIVE', source: 'GTA_THREADS' }, 'small work on one passive thread');
    process.env.OMP_WAIT_POLICY = 'active';
    assert.deepEqual(chooseThreads(builtVersion()), { threads: 3, small: 3, waitPolicy: 'ACTIVE', source: 'GTA_THREADS' });
  } finally {
    process.env = saved;
  }
});

test('threads: a count measured on a busy machine is measured again once the machine is idle', twoCores, () => {
  const saved = { ...process.env };
  try {
    process.env.XDG_CACHE_HOME = tmpDir('gta-cache-');
    delete process.env.GTA_THREADS;
    delete process.env.OMP_WAIT_POLICY;
    const loadOf = () => (Object.values(JSON.parse(fs.readFileSync(cacheFile(), 'utf8')))[0] as { load: number }).load;
    assert.equal(chooseThreads(builtVersion(), 2.5, idle, timed).source, 'measured');
    assert.equal(loadOf(), 2.5);
    assert.equal(chooseThreads(builtVersion(), 3, idle, timed).source, 'cached', 'still busy: the busy measurement stands');
    assert.equal(chooseThreads(builtVersion(), 0.7, idle, timed).source, 'cached', 'not idle yet');
    assert.equal(chooseThreads(builtVersion(), 0.1, idle, timed).source, 'measured', 'idle: measured again');
    assert.equal(loadOf(), 0.1);
    assert.equal(chooseThreads(builtVersion(), 0, idle, timed).source, 'cached');
    assert.equal(chooseThreads(builtVersion(), 2, idle, timed).source, 'cached', 'an idle measurement is kept when the machine is busy later');
  } finally {
    process.env = saved;
  }
});

test('threads: a calibration during which other processes were busy is used but never cached; a cached choice its numbers contradict, or cached without a measure of busyness, is measured again', twoCores, () => {
  const saved = { ...process.env };
  try {
    process.env.XDG_CACHE_HOME = tmpDir('gta-cache-');
    delete process.env.GTA_THREADS;
    delete process.env.OMP_WAIT_POLICY;
    // a load average of 0 (it lags) while another process used a whole core during the measurement
    const busy = chooseThreads(builtVersion(), 0, () => () => 1, timed);
    assert.equal(busy.source, 'measured');
    assert.equal(busy.others, 1);
    assert.deepEqual([busy.threads, busy.small], [os.availableParallelism(), 1], 'the counts its measurements support');
    assert.ok(!fs.existsSync(cacheFile()), 'not cached');
    assert.equal(chooseThreads(builtVersion(), 0, idle, timed).source, 'measured', 'the next process measures again');
    assert.equal(chooseThreads(builtVersion(), 3, idle, timed).source, 'cached', 'an idle measurement stands, whatever the load average');
    const cache = JSON.parse(fs.readFileSync(cacheFile(), 'utf8'));
    const [key] = Object.keys(cache);
    // small work on 2 threads for a 4% gain: within the margin, so 1 is the choice its numbers support
    fs.writeFileSync(cacheFile(), JSON.stringify({ [key]: { ...cache[key], small: 2, measured: { ...cache[key].measured, small: { 1: 100, 2: 96 } } } }));
    assert.equal(chooseThreads(builtVersion(), 0, idle, timed).source, 'measured', 'contradicted by its own numbers');
    const { others: _others, ...old } = JSON.parse(fs.readFileSync(cacheFile(), 'utf8'))[key];
    fs.writeFileSync(cacheFile(), JSON.stringify({ [key]: old }));
    assert.equal(chooseThreads(builtVersion(), 0, idle, timed).source, 'measured', 'cached by a version that trusted the load average');
    assert.equal(chooseThreads(builtVersion(), 0, idle, timed).source, 'cached');
  } finally {
    process.env = saved;
  }
});

test('threads: small work takes more threads only for a clear gain; the busy probe sees another process spinning', async () => {
  assert.equal(fewestNearBest({ 1: 100, 2: 96 }, 1.1), 1, 'a 4% gain is noise');
  assert.equal(fewestNearBest({ 1: 100, 2: 80 }, 1.1), 2);
  const spinner = spawn(process.execPath, ['-e', 'const end = Date.now() + 3000; while (Date.now() < end);']);
  try {
    await new Promise((r) => setTimeout(r, 200));
    const stop = otherProcesses();
    await new Promise((r) => setTimeout(r, 1000));
    const others = stop();
    assert.ok(others !== undefined && others >= BUSY_OTHERS, `another process spinning: ${others} cores`);
  } finally {
    spinner.kill();
  }
});
