/**
 * `npm run bench -- --hf <folder>`: the training steps of a real-size Hugging Face model, per-step
 * time and peak memory, against transformers and TRL in the same invocation. A benchmark, not a test.
 *
 * Each row runs in a child process of its own, so its peak resident memory (VmHWM) is that row's
 * alone, as is the Python reference's (ru_maxrss):
 *  - sft: an SFT step of configs/hf/sst2-sft.yaml at --batch examples (the first batch its sampler
 *    draws), the same token ids in transformers (scripts/hf_reference.py sft: the loss on the target
 *    tokens, torch.optim.AdamW);
 *  - gta: a step of configs/sst2-gta.yaml on the folder (--prompts prompts x --group completions,
 *    structured decoding, the rollout then the update with the guess cross-entropy), against TRL's
 *    GRPOTrainer on the same prompts (as text) with the same group and completion length.
 * Rows with modifiers ('+ckpt', '+lora', '+bf16', '+bf16true', '+accumN': rowConfig) have a reference
 * with the same options where it has them (referenceArgs); --reference-rows a,b limits the references
 * to those rows. '+hugetlb' runs the row, and its reference, with glibc's malloc on transparent huge
 * pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1: fewer page faults, a larger peak; README,
 * "Performance"); the other rows run with this process's environment as it is.
 * Every row prints its process's minor page faults and its time to load the model.
 * gta's rows also print where the bytes go: the weights, the AdamW moments, the most its tensors held
 * during the step (src/backend/torch: the addon's storages), and the process's peak.
 *
 * A folder of a real shape with random weights: node dist/scripts/make_hf_model.js qwen3-0.6b --out DIR.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import tf from '../src/util/tfjs.cjs';
import { loadConfig } from '../src/config/load.js';
import { TrainConfigSchema, type TrainConfig } from '../src/config/schema.js';
import { loadedNative } from '../src/backend/torch/native.js';
import { Trainer } from '../src/train/trainer.js';
import { gtaRunner } from '../src/train/gta.js';
import { BatchSampler } from '../src/train/sampler.js';
import { prepare } from '../src/train/setup.js';
import { sftRunner } from '../src/train/sft.js';
import { maxStructuredLength, structureSpec } from '../src/task/structure.js';
import { createLogger } from '../src/util/log.js';
import { repoRoot } from '../src/util/paths.js';

const GB = 1e9;
/** The LoRA rank of '+lora' rows and of their reference (TRL + PEFT). */
const LORA_R = 16;
/** The environment setting of '+hugetlb' rows. */
const HUGE_PAGES = 'glibc.malloc.hugetlb=1';

export interface HfBenchOptions {
  hf: string;
  steps: number;
  batch: number;
  prompts: number;
  group: number;
  threads: number;
}

/** One gta row's measurements (the child's RESULT line). */
interface ChildResult {
  row: string;
  params: number;
  /** Embedding rows: the model's vocabulary and gta's six tags (the SFT reference resizes to it). */
  vocab: number;
  stepS: number[];
  /** The runner's headline metric per step (sft: train/loss_sft; gta: reward/total/mean). */
  headline: { key: string; values: number[] };
  /** Tokens a GTA completion decodes at most (the reference samples as many). */
  completionTokens?: number;
  /** The steps' perf/*_s phases (rollout, backward, guess CE, ...), each step's, in seconds. */
  phases: Record<string, number[]>;
  /** Seconds from the config to a model ready to train (reading and converting the weights). */
  loadS: number;
  /** The process's minor page faults, all told (each a first touch of a 4 kB page, or of a 2 MB huge page). */
  faults: number;
  /** Bytes: weights, AdamW moments, the most tensors held during the steps, the process peak (VmHWM) and resident after loading. */
  memory: { weights: number; moments: number; tensorsPeak: number; afterLoad: number; peakRss: number };
  /** The first step's batch as token ids (sft) or prompt texts (gta), for the references. */
  inputs: unknown;
}

/** The process's resident and peak resident bytes (/proc/self/status). */
function rss(): { now: number; peak: number } {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { now: kb('VmRSS'), peak: kb('VmHWM') };
}

/** A row's base: 'sft' or 'gta', before its '+' modifiers. */
const base = (row: string) => row.split('+')[0];

/**
 * A row's config: 'sft' or 'gta', then '+accumN' (train.grad_accum_steps N), '+ckpt'
 * (train.activation_checkpointing), '+lora' (train.lora, r 16 on every projection), '+bf16'
 * (train.precision bf16) and '+bf16true' (train.precision bf16-true) as wanted.
 */
function rowConfig(row: string, o: HfBenchOptions): TrainConfig {
  const root = repoRoot();
  const mods = row.split('+').slice(1);
  const common = [`init=${o.hf}`, 'backend=torch', 'train.dropout=0.0'];
  for (const m of mods) {
    const accum = /^accum(\d+)$/.exec(m);
    if (accum) common.push(`train.grad_accum_steps=${accum[1]}`);
    else if (m === 'ckpt') common.push('train.activation_checkpointing=true');
    // the reference's adapters: r 16, alpha 2r, every attention and MLP projection
    else if (m === 'bf16') common.push('train.precision=bf16');
    else if (m === 'bf16true') common.push('train.precision=bf16-true');
    else if (m === 'hugetlb') continue; // the environment's, not the config's: benchHf
    else if (m === 'lora') common.push(`train.lora={r: ${LORA_R}, alpha: ${2 * LORA_R}, target_modules: all-linear}`);
    else throw new Error(`row ${row}: unknown '+${m}' (accumN, ckpt, lora, bf16, bf16true, hugetlb)`);
  }
  if (base(row) === 'sft') return loadConfig(TrainConfigSchema, `${root}/configs/hf/sst2-sft.yaml`, [...common, `train.batch_size=${o.batch}`]).config;
  if (base(row) === 'gta') return loadConfig(TrainConfigSchema, `${root}/configs/sst2-gta.yaml`, [...common, `train.batch_size=${o.prompts * o.group}`, `rl.group_size=${o.group}`, 'train.optim.lr=1.0e-6']).config;
  throw new Error(`row ${row}: sft or gta`);
}

/** A child: one row, --steps steps after none of warm-up (a step of a real-size model is seconds). */
async function child(row: string, o: HfBenchOptions): Promise<ChildResult> {
  const cfg = rowConfig(row, o);
  const t0 = performance.now();
  const p = await prepare(cfg, createLogger('warn'));
  const loadS = (performance.now() - t0) / 1000;
  const native = loadedNative();
  if (!native?.memory) throw new Error('bench --hf needs the torch backend with an addon that counts its memory (npm run build:torch)');
  const weights = native.memory().live;
  const afterLoad = rss().now;
  const trainer = new Trainer(p.model, cfg.train.optim);
  const moments = native.memory().live - weights;
  const sft = cfg.mode === 'sft';
  const runner = sft ? sftRunner(cfg, p, trainer) : gtaRunner(cfg, p, trainer);
  const indices = new BatchSampler(runner.lengths, runner.batchSize, cfg.seed).next({ epoch: 0, batch: 0 }).indices;
  const inputs =
    sft
      ? (() => {
          const ex = indices.map((i) => ({ prompt: p.prompts.prompt(p.data.train[i].text), target: p.prompts.answerTarget(p.data.labels[p.data.train[i].label]) }));
          return { sequences: ex.map((e) => [...e.prompt, ...e.target]), prompt_lengths: ex.map((e) => e.prompt.length) };
        })()
      : { prompts: indices.map((i) => cfg.prompt.template.replace('{text}', p.data.train[i].text)), labels: indices.map((i) => p.data.labels[p.data.train[i].label]) };
  native.memory(true);
  const stepS: number[] = [];
  const headline = { key: runner.headline[0], values: [] as number[] };
  const phases: Record<string, number[]> = {};
  for (let s = 0; s < o.steps; s++) {
    const t0 = performance.now();
    const { metrics } = await runner.step(indices, sft ? 1e-5 : 1e-6);
    stepS.push((performance.now() - t0) / 1000);
    headline.values.push(metrics[headline.key]);
    for (const [k, v] of Object.entries(metrics)) if (/^perf\/.*_s$/.test(k) && !k.endsWith('_per_s')) (phases[k.slice(5, -2)] ??= []).push(v);
  }
  const tensorsPeak = native.memory().peak;
  const completionTokens = sft ? undefined : maxStructuredLength(structureSpec(p.tokenizer, 'gta', p.data.labels, cfg.rl.think_max_tokens));
  const faults = process.resourceUsage().minorPageFault;
  return { row, params: p.model.numParams, vocab: p.model.arch.vocab_size, stepS, headline, completionTokens, phases, loadS, faults, memory: { weights, moments, tensorsPeak, afterLoad, peakRss: rss().peak }, inputs };
}

/** The Python interpreter of the references ($PYTHON), or null with why not. */
function python(): { py: string } | { skip: string } {
  const py = process.env.PYTHON;
  if (!py) return { skip: 'set $PYTHON to a Python with torch, transformers and trl for the references' };
  const r = spawnSync(py, ['-c', 'import torch, transformers, trl'], { encoding: 'utf8' });
  return r.status === 0 ? { py } : { skip: `$PYTHON (${py}) cannot import torch, transformers and trl: ${(r.stderr || '').trim().split('\n').pop()}` };
}

interface RefResult {
  what: string;
  step_s: number[];
  peak_rss_bytes: number;
  [k: string]: unknown;
}

/** The median step after the first (a warm-up: fresh memory's page faults, lazy initialisation) when there are two or more. */
const typical = (xs: number[]) => {
  const rest = xs.length > 1 ? xs.slice(1) : xs;
  const s = [...rest].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const gb = (b: number) => `${(b / GB).toFixed(2)} GB`;

/**
 * The reference's command line for a row (without its input file), or null where it has none. The
 * reference takes the row's options where it has them: '+ckpt' gradient checkpointing, '+lora' PEFT's
 * same adapters (GTA rows: TRL + PEFT), '+bf16true' the model loaded in torch.bfloat16 (transformers
 * and TRL with --dtype bfloat16). None for micro-batches, for SFT with LoRA, or for '+bf16' (products
 * only) without LoRA; a LoRA row in '+bf16' compares with TRL + PEFT in float32.
 */
function referenceArgs(row: string, g: ChildResult, o: HfBenchOptions): string[] | null {
  const mods = row.split('+').slice(1);
  if (mods.some((m) => m.startsWith('accum')) || (mods.includes('bf16') && !mods.includes('lora')) || (base(row) === 'sft' && mods.includes('lora'))) return null;
  const args = ['--model', o.hf, '--steps', String(o.steps), '--threads', String(o.threads)];
  if (mods.includes('ckpt')) args.push('--grad-checkpointing');
  if (mods.includes('bf16true')) args.push('--dtype', 'bfloat16');
  if (base(row) === 'sft') return ['sft', ...args, '--vocab', String(g.vocab)];
  if (mods.includes('lora')) args.push('--lora-r', String(LORA_R));
  return ['grpo', ...args, '--group', String(o.group), '--max-new', String(g.completionTokens)];
}

/** The parent: each row in a child, then its reference (all rows', or --reference-rows'), one table. */
async function benchHf(o: HfBenchOptions, rows: string[], referenceRows?: string[]): Promise<void> {
  const references = new Map<string, RefResult | null>();
  const self = fileURLToPath(import.meta.url);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gta-bench-hf-'));
  const ref = python();
  const baseEnv: NodeJS.ProcessEnv = { ...process.env, GTA_THREADS: String(o.threads) };
  const envOf = (row: string): NodeJS.ProcessEnv => (row.split('+').includes('hugetlb') ? { ...baseEnv, GLIBC_TUNABLES: HUGE_PAGES } : baseEnv);
  const flags = ['--hf', o.hf, '--steps', String(o.steps), '--batch', String(o.batch), '--prompts', String(o.prompts), '--group', String(o.group), '--threads', String(o.threads)];
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot(), encoding: 'utf8' }).stdout?.trim() || 'unknown';
  console.log(`${new Date().toISOString()}, commit ${commit}, ${os.cpus()[0]?.model} x ${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
  console.log(`bench --hf ${o.hf}: ${o.steps} steps a row, ${o.threads} threads; sft batch ${o.batch}; gta ${o.prompts} prompts x ${o.group}; ${'py' in ref ? `references with ${ref.py}` : `references skipped: ${ref.skip}`}`);
  const table: string[] = ['| row | gta load | gta first step | gta step | gta peak RSS | reference | reference step | reference peak RSS | speed | memory |', '|---|---|---|---|---|---|---|---|---|---|'];
  for (const row of rows) {
    const env = envOf(row);
    const r = spawnSync(process.execPath, [self, '--child', row, ...flags], { encoding: 'utf8', env, maxBuffer: 1 << 28 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (r.status !== 0 || !line) {
      console.log(`${row}: gta failed (exit ${r.status ?? r.signal}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
      continue;
    }
    const g = JSON.parse(line.slice(7)) as ChildResult;
    const m = g.memory;
    const P = g.params;
    console.log(`${row}: ${(P / 1e6).toFixed(1)}M parameters; loaded in ${g.loadS.toFixed(2)} s; steps ${g.stepS.map((s) => s.toFixed(2)).join(', ')} s; ${g.headline.key} ${g.headline.values.map((l) => l.toFixed(4)).join(', ')}; ${(g.faults / 1e3).toFixed(0)}k page faults`);
    if (Object.keys(g.phases).length) console.log(`  phases (s, as the step): ${Object.entries(g.phases).map(([k, v]) => `${k} ${typical(v).toFixed(2)}`).join(', ')}`);
    console.log(`  memory: weights ${gb(m.weights)} (${(m.weights / P).toFixed(1)} B/param), AdamW moments ${gb(m.moments)}, tensors at most ${gb(m.tensorsPeak)} during the steps ` +
      `(${(m.tensorsPeak / P).toFixed(1)} B/param: ${gb(m.tensorsPeak - m.weights - m.moments)} beyond weights and moments); resident after loading ${gb(m.afterLoad)}, process peak ${gb(m.peakRss)} (${(m.peakRss / P).toFixed(1)} B/param)`);
    let refCells = ['', '', '', '', ''];
    const args = referenceArgs(row, g, o);
    if ('py' in ref && args && (!referenceRows || referenceRows.includes(row))) {
      const key = `${args.join(' ')} ${env.GLIBC_TUNABLES ?? ''}`;
      // one reference run serves every row that asks for the same one (a LoRA row in float32, bf16, ...)
      if (!references.has(key)) {
        const input = path.join(tmp, `${row}.json`);
        fs.writeFileSync(input, JSON.stringify(g.inputs));
        const pr = spawnSync(ref.py, [path.join(repoRoot(), 'scripts', 'hf_reference.py'), ...args, base(row) === 'sft' ? '--batch' : '--prompts', input], { encoding: 'utf8', env, maxBuffer: 1 << 28 });
        const pl = pr.stdout.trim().split('\n').pop() ?? '';
        if (pr.status !== 0 || !pl.startsWith('{')) console.log(`  reference failed (exit ${pr.status ?? pr.signal}): ${(pr.stderr || '').trim().split('\n').slice(-3).join(' | ')}`);
        references.set(key, pr.status === 0 && pl.startsWith('{') ? (JSON.parse(pl) as RefResult) : null);
      }
      const rr = references.get(key);
      if (rr) {
        const rs = typical(rr.step_s);
        console.log(`  ${rr.what}: steps ${rr.step_s.map((s) => s.toFixed(2)).join(', ')} s; peak ${gb(rr.peak_rss_bytes)}`);
        refCells = [rr.what, `${rs.toFixed(2)} s`, gb(rr.peak_rss_bytes), `${(rs / typical(g.stepS)).toFixed(2)}x`, `${(m.peakRss / rr.peak_rss_bytes).toFixed(2)}x`];
      }
    }
    table.push(`| ${row} | ${g.loadS.toFixed(2)} s | ${g.stepS[0].toFixed(2)} s | ${typical(g.stepS).toFixed(2)} s | ${gb(m.peakRss)} | ${refCells.join(' | ')} |`);
  }
  console.log('\nstep: the median after the first (a warm-up); speed: reference step / gta step; memory: gta peak / reference peak (resident set, each in a process of its own)\n');
  console.log(table.join('\n'));
  fs.rmSync(tmp, { recursive: true, force: true });
}

function parse(argv: string[]): { row?: string; o: HfBenchOptions; rows: string[]; referenceRows?: string[] } {
  const get = (k: string, d?: string) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : d;
  };
  const int = (k: string, d: number) => {
    const v = Number(get(k, String(d)));
    if (!Number.isInteger(v) || v < 1) throw new Error(`${k} must be a positive integer`);
    return v;
  };
  const hf = get('--hf');
  if (!hf) throw new Error('--hf <folder> is required');
  const o = { hf: path.resolve(hf), steps: int('--steps', 3), batch: int('--batch', 8), prompts: int('--prompts', 8), group: int('--group', 8), threads: int('--threads', os.availableParallelism()) };
  return { row: get('--child'), o, rows: (get('--rows', 'sft,gta') ?? '').split(','), referenceRows: get('--reference-rows')?.split(',') };
}

/** The command line: a row's child (--child ROW) or the whole bench. */
export async function main(argv: string[]): Promise<void> {
  const { row, o, rows, referenceRows } = parse(argv);
  if (!row) return benchHf(o, rows, referenceRows);
  const r = await child(row, o);
  console.log(`RESULT ${JSON.stringify(r)}`);
  tf.disposeVariables();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
  process.exit(0);
}
