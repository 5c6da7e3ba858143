/** The local executor: up to `jobs` sweep runs at a time, each a `gta train` child process of this one. */
import type { ChildProcess } from 'node:child_process';
import type { SweepExecutor, SweepOutcome, SweepRun } from './sweep.js';
import { errorLine, lastStep, startChild, trainArgs } from './child.js';

export class LocalExecutor implements SweepExecutor {
  private readonly active = new Map<SweepRun, ChildProcess>();
  private stopped = false;

  /** `extraArgs` go to every child (e.g. --backend). */
  constructor(
    private readonly jobs: number,
    private readonly extraArgs: string[] = [],
  ) {}

  running(): { run: SweepRun; step: number }[] {
    return [...this.active.keys()].map((run) => ({ run, step: lastStep(run.dir) }));
  }

  stop(): void {
    this.stopped = true;
    // over the IPC channel, not a signal: a run that Ctrl-C reached too must not count this as a second
    // one (the callback takes the error of a child that has just exited: nothing to stop)
    for (const child of this.active.values()) if (child.connected) child.send({ stop: true }, () => undefined);
  }

  async execute(runs: SweepRun[], done: (o: SweepOutcome) => void): Promise<void> {
    const queue = [...runs];
    const worker = async () => {
      for (let r = queue.shift(); r && !this.stopped; r = queue.shift()) {
        const { action, args, sets } = trainArgs(r.dir, r.config, r.overrides);
        const { child, done: ended } = startChild([...args, ...this.extraArgs, '--log-level', 'warn'], this.jobs, {}, sets);
        this.active.set(r, child);
        const res = await ended;
        this.active.delete(r);
        // 130: `gta train` stopped after its step, as asked
        const interrupted = this.stopped && res.code === 130;
        done({ run: r, action, ok: res.code === 0, interrupted, error: res.code === 0 || interrupted ? undefined : errorLine(res.stderr) });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.jobs) }, worker));
  }
}
