/**
 * Fault injection for crash tests: GTA_CRASH_AT=<point>:<n> makes the process kill itself with SIGKILL
 * the n-th time it reaches `point` (rollout, optimizer, checkpoint). Unset, this is one Map lookup.
 * GTA_CRASH_RANK=r limits it to data-parallel rank r (RANK in the environment).
 */
const only = process.env.GTA_CRASH_RANK;
const spec = only === undefined || only === (process.env.RANK ?? '0') ? process.env.GTA_CRASH_AT?.split(':') : undefined;
const counts = new Map<string, number>();

export function crashPoint(point: string): void {
  if (!spec || spec[0] !== point) return;
  const n = (counts.get(point) ?? 0) + 1;
  counts.set(point, n);
  if (n === Number(spec[1] ?? 1)) process.kill(process.pid, 'SIGKILL');
}
