/**
 * One sweep run as a `gta train` child process, the same for a local sweep and a queue worker: it
 * continues a run that has a checkpoint, and otherwise (re)starts it in its directory (`gta train
 * --run-dir` empties one left without a checkpoint, under the run directory's lock). The child gets an
 * IPC channel so that it stops if this process dies (src/cli/signals.ts, stopWithParent), and argv is an
 * array: nothing from a config or a queue job reaches a shell.
 */
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { repoRoot } from '../util/paths.js';
import { RunDir, runStatus } from '../run/run_dir.js';

export type RunAction = 'trained' | 'resumed';

/**
 * The `gta train` arguments for a run in `dir`, and its overrides: startChild hands those over in a
 * file (`--set-file`), not on the command line, so none can pass for an option and no number or size
 * of them meets the system's argument limit (300 overrides of 9 kB ended in `spawn E2BIG`).
 */
export function trainArgs(dir: string, config: string, overrides: string[]): { action: RunAction; args: string[]; sets: string[] } {
  const resumable = runStatus(dir) !== null && new RunDir(dir).hasCheckpoint('latest');
  return resumable ? { action: 'resumed', args: ['train', '--resume', dir], sets: [] } : { action: 'trained', args: ['train', '--config', config, '--run-dir', dir], sets: overrides };
}

export interface ChildRun {
  child: ChildProcess;
  done: Promise<{ code: number; stderr: string }>;
}

/**
 * Starts `gta <args>` in a child process. With several jobs the cores are shared out among the
 * children (the torch backend would otherwise take the count measured for a machine of its own in
 * each); one job chooses as a lone run does.
 */
export function startChild(args: string[], jobs: number, env: NodeJS.ProcessEnv = {}, sets: string[] = []): ChildRun {
  const share = { ...(jobs > 1 ? { GTA_THREADS: String(Math.max(1, Math.floor(os.availableParallelism() / jobs))) } : {}), ...env };
  const setDir = sets.length ? fs.mkdtempSync(path.join(os.tmpdir(), 'gta-sets-')) : undefined;
  if (setDir) fs.writeFileSync(path.join(setDir, 'sets.json'), JSON.stringify(sets));
  const all = setDir ? [...args, '--set-file', path.join(setDir, 'sets.json')] : args;
  const child = spawn(process.execPath, [path.join(repoRoot(), 'bin', 'gta'), ...all], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: childEnv(share) });
  const done = new Promise<{ code: number; stderr: string }>((resolve) => {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20000);
    });
    child.on('exit', (code, signal) => {
      if (setDir) fs.rmSync(setDir, { recursive: true, force: true });
      // killed without a word (the kernel's out-of-memory killer, say): the signal is the message
      const said = stderr.trim() !== '' || signal === null ? stderr : `gta: error: the training process was killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}`;
      resolve({ code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1), stderr: said });
    });
  });
  return { child, done };
}

/** Secrets of this process that a training child never needs: a job's code must not be able to read them. */
const CHILD_SECRETS = ['GTA_REDIS_PASSWORD'];

/** This process's environment for a child: `extra` under it, without CHILD_SECRETS. */
export function childEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...extra, ...process.env };
  for (const name of CHILD_SECRETS) delete env[name];
  return env;
}

/** The child's own one-line error ("gta: error: ..."), else its last line. */
export function errorLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  return lines.find((l) => l.startsWith('gta: ')) ?? lines[lines.length - 1] ?? 'no output';
}

/** The last step a run has logged (0 before it has a run directory). */
export function lastStep(dir: string): number {
  return runStatus(dir) === null ? 0 : new RunDir(dir).lastStep();
}
