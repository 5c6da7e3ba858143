/** The torch backend's thread choice: measured once per machine, cached, overridden by GTA_THREADS. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { builtVersion } from '../src/backend/torch/native.js';
import { cacheFile, chooseThreads } from '../src/backend/torch/threads.js';
import { tmpDir } from './helpers/tiny.js';

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
    const first = chooseThreads(builtVersion(), 0);
    const cores = os.availableParallelism();
    if (cores === 1) return assert.equal(first.source, 'one core');
    assert.equal(first.source, 'measured');
    assert.equal(first.waitPolicy, 'PASSIVE', 'idle threads sleep by default');
    assert.ok(first.threads >= 1 && first.threads <= cores && first.small >= 1 && first.small <= cores);
    for (const w of ['large', 'small'] as const) assert.ok('1' in first.measured![w] && Object.values(first.measured![w]).every((ms) => ms > 0), JSON.stringify(first.measured));
    assert.ok(fs.existsSync(cacheFile()));
    const second = chooseThreads(builtVersion(), 0);
    assert.deepEqual({ ...second, source: 'measured' }, first);
    assert.equal(second.source, 'cached');
    process.env.GTA_THREADS = '3';
    assert.deepEqual(chooseThreads(builtVersion()), { threads: 3, small: 1, waitPolicy: 'PASSIVE', source: 'GTA_THREADS' }, 'small work on one passive thread');
    process.env.OMP_WAIT_POLICY = 'active';
    assert.deepEqual(chooseThreads(builtVersion()), { threads: 3, small: 3, waitPolicy: 'ACTIVE', source: 'GTA_THREADS' });
  } finally {
    process.env = saved;
  }
});

test('threads: a count measured on a busy machine is measured again once the machine is idle', { skip: built.ok && os.availableParallelism() > 1 ? false : 'the torch addon is not built, or one core' }, () => {
  const saved = { ...process.env };
  try {
    process.env.XDG_CACHE_HOME = tmpDir('gta-cache-');
    delete process.env.GTA_THREADS;
    delete process.env.OMP_WAIT_POLICY;
    const loadOf = () => (Object.values(JSON.parse(fs.readFileSync(cacheFile(), 'utf8')))[0] as { load: number }).load;
    assert.equal(chooseThreads(builtVersion(), 2.5).source, 'measured');
    assert.equal(loadOf(), 2.5);
    assert.equal(chooseThreads(builtVersion(), 3).source, 'cached', 'still busy: the busy measurement stands');
    assert.equal(chooseThreads(builtVersion(), 0.7).source, 'cached', 'not idle yet');
    assert.equal(chooseThreads(builtVersion(), 0.1).source, 'measured', 'idle: measured again');
    assert.equal(loadOf(), 0.1);
    assert.equal(chooseThreads(builtVersion(), 0).source, 'cached');
    assert.equal(chooseThreads(builtVersion(), 2).source, 'cached', 'an idle measurement is kept when the machine is busy later');
  } finally {
    process.env = saved;
  }
});
