/**
 * A run's identity is its name and its resolved config. Sweeps find a run by name (its folder), so a
 * sweep run again with a changed `--set` (train.optim.lr=0.003) used to get "skipped" for runs made
 * with the old config, and the report mixed learning rates. run.json now records config_sha256, a hash
 * of the resolved config, and a run counts as done only for the same hash; a run of another config is
 * named with the keys that differ.
 *
 * `backend` is left out of the hash: it is where a run executes (`gta worker --backend` picks it per
 * machine), not what the run is.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { loadConfig } from '../config/load.js';
import { TrainConfigSchema, type TrainConfig } from '../config/schema.js';
import { RunDir, RUN_FILES } from './run_dir.js';

type Resolved = Record<string, unknown>;

function identity(config: Resolved): Resolved {
  const { backend: _backend, ...rest } = config;
  return rest;
}

/** JSON with every object's keys sorted: the same config hashes the same whatever order filled it in. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    const o = v as Resolved;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** The hash that identifies a resolved run config. */
export function configHash(config: TrainConfig | Resolved): string {
  return crypto.createHash('sha256').update(canonical(identity(config as Resolved))).digest('hex');
}

/** The config of the run in `dir` as it resolves now (from config.resolved.yaml), or undefined. */
function runConfig(dir: string): Resolved | undefined {
  const file = new RunDir(dir).file(RUN_FILES.config);
  if (!fs.existsSync(file)) return undefined;
  try {
    return loadConfig(TrainConfigSchema, file).config as Resolved;
  } catch {
    return undefined;
  }
}

/**
 * The config hash of the run in `dir`: run.json's config_sha256, or for a run made before it was
 * recorded, the hash of its config.resolved.yaml; undefined when neither can be read.
 */
export function runConfigHash(dir: string): string | undefined {
  try {
    const recorded = new RunDir(dir).info().config_sha256;
    if (typeof recorded === 'string') return recorded;
  } catch {
    return undefined;
  }
  const config = runConfig(dir);
  return config && configHash(config);
}

/** Up to `max` dotted keys whose values differ between the run in `dir` and `config`, for messages. */
export function configDifference(dir: string, config: TrainConfig, max = 3): string {
  const old = runConfig(dir);
  if (!old) return 'its config cannot be read';
  const keys: string[] = [];
  const walk = (a: unknown, b: unknown, at: string) => {
    const isMap = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (isMap(a) && isMap(b)) {
      for (const k of new Set([...Object.keys(a as Resolved), ...Object.keys(b as Resolved)])) walk((a as Resolved)[k], (b as Resolved)[k], at ? `${at}.${k}` : k);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) keys.push(`${at}: ${JSON.stringify(a)} there, ${JSON.stringify(b)} now`);
  };
  walk(identity(old), identity(config as Resolved), '');
  if (keys.length === 0) return 'the same settings, recorded differently';
  return keys.slice(0, max).join('; ') + (keys.length > max ? `; and ${keys.length - max} more` : '');
}
