/**
 * `gta train --nproc N`: N local ranks of the same command, met through libtorch's TCPStore on a free
 * loopback port (torchrun's environment: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK). The
 * cores are shared out (GTA_THREADS each, unless set). Rank 0's output is this command's; the others
 * log warnings only, prefixed with their rank. When a rank dies the others are stopped at once and the
 * error names it; a signal here reaches every rank, which stop together after the same step.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../util/paths.js';
import { GtaError } from '../util/errors.js';

/** A port the kernel says is free now (the store binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** `args`: this command's arguments without --nproc. Resolves when every rank has finished; rejects naming the first rank that failed. */
export async function launchRanks(nproc: number, args: string[]): Promise<void> {
  const port = await freePort();
  const threads = process.env.GTA_THREADS ?? String(Math.max(1, Math.floor(os.availableParallelism() / nproc)));
  const children: ChildProcess[] = [];
  let failure: { rank: number; how: string; line: string } | null = null;
  const forward = (s: NodeJS.Signals) => children.forEach((c) => c.exitCode === null && c.kill(s));
  const onSignal = (s: NodeJS.Signals) => forward(s);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const exits = Array.from({ length: nproc }, (_, rank) => {
    const env = { ...process.env, RANK: String(rank), LOCAL_RANK: String(rank), WORLD_SIZE: String(nproc), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), GTA_THREADS: threads };
    const rankArgs = rank === 0 ? args : [...withoutOption(args, '--log-level'), '--log-level', 'warn'];
    const child = spawn(process.execPath, [path.join(repoRoot(), 'bin', 'gta'), ...rankArgs], { env, stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', 'pipe'] });
    children.push(child);
    let last = '';
    child.stderr!.on('data', (d: Buffer) => {
      const text = d.toString();
      process.stderr.write(rank === 0 ? text : text.replace(/^(?=.)/gm, `[rank ${rank}] `));
      const lines = text.trim().split('\n');
      last = lines.find((l) => l.startsWith('gta: ')) ?? lines[lines.length - 1] ?? last;
    });
    return new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        if ((code !== 0 || signal) && !failure) {
          failure = { rank, how: signal ? `was killed by ${signal}` : `exited with code ${code}`, line: last.replace(/^gta: (error: )?/, '') };
          // the others fail at their next collective (rank 0 marks the run failed); a rank stuck elsewhere is killed
          forward('SIGTERM');
          setTimeout(() => forward('SIGKILL'), 10_000).unref();
        }
        resolve();
      });
    });
  });
  await Promise.all(exits);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const f = failure as { rank: number; how: string; line: string } | null;
  // stopped by a signal: every rank wrote its checkpoint, and rank 0 said how to resume
  if (f && children.every((c) => c.exitCode === 130)) throw new GtaError(f.line, 130);
  if (f) throw new GtaError(`rank ${f.rank} of ${nproc} ${f.how}${f.line ? ` (${f.line})` : ''}; the other ranks were stopped`, 1);
}

/** The command line without its --nproc option (each rank runs the rest). */
export function withoutNproc(argv: string[]): string[] {
  return withoutOption(argv, '--nproc');
}

/** argv without one option and its value (`--name v` or `--name=v`). */
function withoutOption(argv: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) i++;
    else if (!argv[i].startsWith(`${name}=`)) out.push(argv[i]);
  }
  return out;
}
