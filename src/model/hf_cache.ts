/**
 * Hub-style model ids (`Qwen/Qwen2.5-0.5B`, `Qwen/Qwen2.5-0.5B@<revision>`) resolved to a snapshot folder
 * of the local Hugging Face cache, as Python's huggingface_hub lays it out:
 * `<cache>/models--Org--Name/snapshots/<commit>/`, with `refs/<branch>` holding the commit. The cache
 * folder and the repository folder's name come from @huggingface/hub (HF_HUB_CACHE, HF_HOME,
 * XDG_CACHE_HOME, ~/.cache/huggingface/hub, the order huggingface_hub uses); nothing is downloaded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { getHFHubCachePath, getRepoFolderName } from '@huggingface/hub';
import { GtaError } from '../util/errors.js';

/** `Org/Name` or `Org/Name@revision`, as the hub spells repository ids. */
const HUB_ID = /^([A-Za-z0-9][\w.-]*)\/([\w.-]+)(?:@([\w./-]+))?$/;

export interface CachedModel {
  /** The snapshot folder: config.json, safetensors and tokenizer.json (links into blobs/). */
  dir: string;
  id: string;
  /** The commit the snapshot is of. */
  commit: string;
}

/**
 * `init` as a folder: itself when it exists or looks like a path (its first part is a folder here, it
 * starts with . or /), else the cache's snapshot of the hub id it names. A hub id not in the cache is a
 * one-line error saying how to get it.
 */
export function resolveModelFolder(init: string, key = 'init'): { dir: string; cached?: CachedModel } {
  const m = HUB_ID.exec(init);
  if (fs.existsSync(init) || !m || fs.existsSync(m[1])) return { dir: init };
  const cached = findCached(`${m[1]}/${m[2]}`, m[3] ?? 'main', key);
  return { dir: cached.dir, cached };
}

/** The snapshot of `id` at `revision` (a branch or tag under refs/, or a commit whose snapshot is there). */
export function findCached(id: string, revision: string, key = 'init'): CachedModel {
  const cache = getHFHubCachePath();
  const repo = path.join(cache, getRepoFolderName({ name: id, type: 'model' }));
  const spelt = revision === 'main' ? id : `${id}@${revision}`;
  const get = `huggingface-cli download ${id}${revision === 'main' ? '' : ` --revision ${revision}`}`;
  if (!fs.existsSync(repo)) {
    throw new GtaError(`${key}: ${spelt} is not a folder here nor in the local Hugging Face cache (${repo} is missing; gta downloads nothing): get it with \`${get}\`, or set HF_HOME to the cache that has it`);
  }
  const ref = path.join(repo, 'refs', revision);
  let commit = revision;
  if (fs.existsSync(ref) && fs.statSync(ref).isFile()) commit = fs.readFileSync(ref, 'utf8').trim();
  const dir = path.join(repo, 'snapshots', commit);
  if (!fs.existsSync(dir)) {
    const what = commit === revision ? `neither ${ref} nor ${dir} exists` : `${ref} names commit ${commit}, whose snapshot ${dir} is missing`;
    throw new GtaError(`${key}: ${spelt} is not complete in the local Hugging Face cache (${what}): get it with \`${get}\``);
  }
  return { dir, id, commit };
}
