/** Sweeps for the queue tests: configs on the tiny synthetic task, gta processes started in the background. */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { GTA, tinyConfig } from './cli.js';

/** Writes tiny-<mode>.yaml for each mode and a sweep config over them; returns the sweep config's path. */
export function writeSweep(dir: string, file: string, o: { out: string; modes?: string[]; arms?: string; seeds?: number[]; set?: string[] }): string {
  const base = fs.readFileSync(tinyConfig(dir), 'utf8');
  for (const mode of ['sft', 'rl', 'gta']) fs.writeFileSync(path.join(dir, `tiny-${mode}.yaml`), `${base}mode: ${mode}\n`);
  const cfg = path.join(dir, file);
  const set = o.set ?? ['train.steps=20', 'train.eval_every=10', 'train.log_every=5', 'data.name=tiny', 'train.batch_size=16', 'rl.group_size=4', 'rl.think_max_tokens=2', 'model.max_seq_len=48'];
  fs.writeFileSync(
    cfg,
    `name: mini
output_dir: ${o.out}
datasets: [tiny]
${o.arms ?? `modes: [${(o.modes ?? ['sft', 'rl']).join(', ')}]`}
seeds: [${(o.seeds ?? [1, 2]).join(', ')}]
jobs: 2
config_template: ${path.join(dir, '{dataset}-{mode}.yaml')}
set: [${set.join(', ')}]
`,
  );
  return cfg;
}

export interface Started {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or 128 + signal number for a kill). */
  exited: Promise<number>;
  /** Resolves once stderr has matched `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
}

/** `gta <args>` in the background, its output kept. */
export function startGta(args: string[], cwd: string, env: Record<string, string> = {}): Started {
  const proc = spawn(process.execPath, [GTA, ...args], { cwd, env: { ...process.env, CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of [...waiters]) if (w.re.test(err)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const exited = new Promise<number>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128))));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (re, timeoutMs = 60_000) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(err)) return resolve();
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re} in: ${err}`)), timeoutMs);
        waiters.push({ re, resolve: () => (clearTimeout(timer), resolve()) });
        exited.then((code) => reject(new Error(`exited ${code} before ${re}: ${err}`)));
      }),
  };
}

/** Stops a background gta process (SIGTERM, then SIGKILL) and waits for it. */
export async function stopGta(s: Started): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  s.proc.kill('SIGTERM');
  const timer = setTimeout(() => s.proc.kill('SIGKILL'), 10_000);
  await s.exited;
  clearTimeout(timer);
}

/** The parsed NDJSON log lines of a gta process's stderr with message `msg`. */
export function logLines(stderr: string, msg: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

export async function until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A JSON value without wall-clock and speed entries (time_s, seconds to threshold, perf/*), for comparing runs. */
export function withoutTime(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutTime);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !/^time_s$|seconds|^perf\/|^wall/.test(k)).map(([k, x]) => [k, withoutTime(x)]));
  return v;
}

export const jsonl = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
