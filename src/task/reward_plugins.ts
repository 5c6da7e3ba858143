/**
 * Rewards of the user's own: an rl.rewards entry `{ name, module, weight }` names an ES module (.mjs or
 * .js) whose default export (or export named like the reward) is
 *
 *   (completion, gold, row, info) => number
 *
 * completion: { guess, think, answer, well_formed, text } (labels as names, null where missing; think
 * and text as decoded text), gold: the gold label's name, row: the example's whole row as the data file
 * held it, info: { labels } (the label list in the dataset's order). A module path is read relative to
 * the current folder, else to gta's own folder (the shipped rewards/ordinal.mjs). Loading or calling
 * it fails with one line naming the file; a value that is not a finite number fails the same way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RewardSpec } from '../config/rewards.js';
import { GtaError } from '../util/errors.js';
import { repoRoot } from '../util/paths.js';
import { builtinReward, type Reward, type RewardInput } from './rewards.js';

export interface RewardCompletion {
  guess: string | null;
  think: string;
  answer: string | null;
  well_formed: boolean;
  text: string;
}

export type RewardFunction = (completion: RewardCompletion, gold: string, row: Record<string, unknown>, info: { labels: string[] }) => number;

/** The file a reward module path names: relative to the current folder, else to gta's own folder. */
export function rewardModulePath(module: string): string {
  if (path.isAbsolute(module)) return module;
  const here = path.resolve(module);
  if (fs.existsSync(here)) return here;
  const shipped = path.join(repoRoot(), module);
  return fs.existsSync(shipped) ? shipped : here;
}

/** The run's rewards, modules imported (before the run starts, so a bad one leaves no run behind). */
export async function loadRewards(specs: RewardSpec[], labels: string[]): Promise<Reward[]> {
  const out: Reward[] = [];
  for (const spec of specs) out.push(spec.module === undefined ? builtinReward(spec) : await pluginReward(spec, spec.module, labels));
  return out;
}

async function pluginReward(spec: RewardSpec, module: string, labels: string[]): Promise<Reward> {
  const file = rewardModulePath(module);
  const where = `rl.rewards ${spec.name}: ${file}`;
  if (!fs.existsSync(file)) throw new GtaError(`${where}: no such file`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new GtaError(`${where}: cannot load the module (${oneLine(e)})`);
  }
  const fn = (typeof mod[spec.name] === 'function' ? mod[spec.name] : mod.default) as RewardFunction | undefined;
  if (typeof fn !== 'function') throw new GtaError(`${where}: exports no function (export default, or export one named ${spec.name})`);
  const name = (i: number | null) => (i === null ? null : labels[i]);
  return {
    name: spec.name,
    weight: spec.weight,
    score(x: RewardInput): number {
      const text = x.text?.() ?? { think: '', completion: '' };
      const completion: RewardCompletion = { guess: name(x.parsed.guess), think: text.think, answer: name(x.parsed.answer), well_formed: x.parsed.wellFormed, text: text.completion };
      let v: unknown;
      try {
        v = fn(completion, labels[x.gold], x.row ?? {}, { labels });
      } catch (e) {
        throw new GtaError(`${where}: the reward threw: ${oneLine(e)}`);
      }
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new GtaError(`${where}: the reward returned ${JSON.stringify(v) ?? String(v)}, not a finite number (answer ${JSON.stringify(completion.answer)}, gold ${JSON.stringify(labels[x.gold])})`);
      return v;
    },
  };
}

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}
