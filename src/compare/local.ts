/** The local executor: up to `jobs` sweep runs at a time, each a `gta train` child process of this one. */
import type { SweepExecutor, SweepOutcome, SweepRun } from './sweep.js';
import { errorLine, lastStep, startChild, trainArgs } from './child.js';

export class LocalExecutor implements SweepExecutor {
  private readonly active = new Set<SweepRun>();

  /** `extraArgs` go to every child (e.g. --backend). */
  constructor(
    private readonly jobs: number,
    private readonly extraArgs: string[] = [],
  ) {}

  running(): { run: SweepRun; step: number }[] {
    return [...this.active].map((run) => ({ run, step: lastStep(run.dir) }));
  }

  async execute(runs: SweepRun[], done: (o: SweepOutcome) => void): Promise<void> {
    const queue = [...runs];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        this.active.add(r);
        const { action, args, sets } = trainArgs(r.dir, r.config, r.overrides);
        const res = await startChild([...args, ...this.extraArgs, '--log-level', 'warn'], this.jobs, {}, sets).done;
        this.active.delete(r);
        done({ run: r, action, ok: res.code === 0, error: res.code === 0 ? undefined : errorLine(res.stderr) });
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.jobs) }, worker));
  }
}
