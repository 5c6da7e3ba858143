/**
 * Hub ids as `init:` (src/model/hf_cache.ts): a cache laid out on disk as huggingface_hub lays it
 * (models--Org--Name/{blobs,refs,snapshots}, snapshot files linked into blobs/), found through HF_HOME,
 * HF_HUB_CACHE or a revision; and one line saying how to get a model that is not there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadInitial } from '../src/model/init.js';
import { findCached, resolveModelFolder } from '../src/model/hf_cache.js';
import { repoRoot } from '../src/util/paths.js';
import { tmpDir, useWasm } from './helpers/tiny.js';

const FIXTURE = path.join(repoRoot(), 'test', 'fixtures', 'hf', 'gpt2');
const COMMIT = 'a'.repeat(40);

/** `<home>/hub/models--tiny-org--tiny-gpt2` holding the gpt2 fixture at COMMIT, refs/main pointing at it. */
function cacheWithModel(): { home: string; snapshot: string } {
  const home = tmpDir('gta-hf-home-');
  const repo = path.join(home, 'hub', 'models--tiny-org--tiny-gpt2');
  const snapshot = path.join(repo, 'snapshots', COMMIT);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'));
  fs.mkdirSync(snapshot, { recursive: true });
  for (const f of fs.readdirSync(FIXTURE).filter((f) => f !== 'golden.safetensors')) {
    const data = fs.readFileSync(path.join(FIXTURE, f));
    const blob = path.join(repo, 'blobs', createHash('sha256').update(data).digest('hex'));
    fs.writeFileSync(blob, data);
    fs.symlinkSync(path.relative(snapshot, blob), path.join(snapshot, f));
  }
  fs.writeFileSync(path.join(repo, 'refs', 'main'), COMMIT);
  return { home, snapshot };
}

/** Runs `f` with only HF_HOME pointing at `home` (the other cache variables unset), then restores them. */
function withHfHome<T>(home: string, f: () => T): T {
  const keys = ['HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE'] as const;
  const saved = keys.map((k) => process.env[k]);
  for (const k of keys) delete process.env[k];
  process.env.HF_HOME = home;
  try {
    return f();
  } finally {
    keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
  }
}

test('a hub id loads the snapshot refs/main names in $HF_HOME/hub, the same model as the folder itself', async () => {
  await useWasm();
  const { home, snapshot } = cacheWithModel();
  withHfHome(home, () => {
    assert.deepEqual(resolveModelFolder('tiny-org/tiny-gpt2'), { dir: snapshot, cached: { dir: snapshot, id: 'tiny-org/tiny-gpt2', commit: COMMIT } });
    // a revision: a commit whose snapshot is there, or a ref
    assert.equal(resolveModelFolder(`tiny-org/tiny-gpt2@${COMMIT}`).dir, snapshot);
    fs.writeFileSync(path.join(home, 'hub', 'models--tiny-org--tiny-gpt2', 'refs', 'v1'), COMMIT);
    assert.equal(findCached('tiny-org/tiny-gpt2', 'v1').dir, snapshot);
    const fromCache = loadInitial('tiny-org/tiny-gpt2', 3);
    const fromFolder = loadInitial(FIXTURE, 3);
    assert.equal(fromCache.tokenizer.fingerprint(), fromFolder.tokenizer.fingerprint());
    for (const [name, v] of fromFolder.model.params) assert.deepEqual(fromCache.model.params.get(name)!.dataSync(), v.dataSync(), name);
    fromCache.model.dispose();
    fromFolder.model.dispose();
  });
  // HF_HUB_CACHE names the hub folder itself, as in huggingface_hub
  const saved = process.env.HF_HUB_CACHE;
  process.env.HF_HUB_CACHE = path.join(home, 'hub');
  try {
    assert.equal(resolveModelFolder('tiny-org/tiny-gpt2').dir, snapshot);
  } finally {
    if (saved === undefined) delete process.env.HF_HUB_CACHE;
    else process.env.HF_HUB_CACHE = saved;
  }
});

test('a hub id not in the cache is one line saying how to get it; paths stay paths', () => {
  const { home } = cacheWithModel();
  withHfHome(home, () => {
    const missing = path.join(home, 'hub', 'models--Qwen--Qwen2.5-0.5B');
    assert.throws(
      () => loadInitial('Qwen/Qwen2.5-0.5B', 1),
      (e: Error) => e.message === `init: Qwen/Qwen2.5-0.5B is not a folder here nor in the local Hugging Face cache (${missing} is missing; gta downloads nothing): get it with \`huggingface-cli download Qwen/Qwen2.5-0.5B\`, or set HF_HOME to the cache that has it`,
    );
    assert.throws(() => resolveModelFolder('tiny-org/tiny-gpt2@v9'), (e: Error) => !e.message.includes('\n') && /tiny-org\/tiny-gpt2@v9 is not complete in the local Hugging Face cache .*huggingface-cli download tiny-org\/tiny-gpt2 --revision v9/.test(e.message));
    // refs/main naming a snapshot that is gone (an interrupted download)
    fs.writeFileSync(path.join(home, 'hub', 'models--tiny-org--tiny-gpt2', 'refs', 'main'), 'b'.repeat(40));
    assert.throws(() => resolveModelFolder('tiny-org/tiny-gpt2'), /refs\/main names commit b{40}, whose snapshot .* is missing/);
  });
  // an existing folder, an absolute path or one under a folder that exists here is a path, not a hub id
  assert.deepEqual(resolveModelFolder(FIXTURE), { dir: FIXTURE });
  const here = tmpDir();
  assert.deepEqual(resolveModelFolder(path.join(here, 'nothing')), { dir: path.join(here, 'nothing') });
  assert.throws(() => loadInitial(path.join(here, 'nothing'), 1), /no such checkpoint folder/);
});
