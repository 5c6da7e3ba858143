/**
 * How busy the rest of the machine is, measured directly: the CPU time every process spent (the first
 * line of /proc/stat) minus this process's own and its waited-for children's (/proc/self/stat), over
 * a stretch of wall time, in cores. The 1-minute load average lags: a calibration made just after a
 * busy spell (right after `npm test`, say) read as busy, or one made as a busy spell began read as idle.
 */
import fs from 'node:fs';

/** Clock ticks a second of /proc's times (USER_HZ: 100 on every Linux the project runs on). */
const TICKS = 100;

function allBusyTicks(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: all but idle and iowait
  return f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
}

function ownTicks(): number {
  const s = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ').map(Number);
  // fields 14-17 of proc(5) (utime stime cutime cstime) are 11-14 after the command name
  return f[11] + f[12] + f[13] + f[14];
}

/** A probe: started before some work, it returns a function that gives the other processes' cores since. */
export type BusyProbe = () => () => number | undefined;

/** The real probe; undefined where /proc cannot be read (then nobody can tell). */
export const otherProcesses: BusyProbe = () => {
  let start: { all: number; own: number; at: number } | undefined;
  try {
    start = { all: allBusyTicks(), own: ownTicks(), at: performance.now() };
  } catch {
    start = undefined;
  }
  return () => {
    if (!start) return undefined;
    try {
      const seconds = (performance.now() - start.at) / 1000;
      if (seconds <= 0) return 0;
      const others = allBusyTicks() - start.all - (ownTicks() - start.own);
      return Math.max(0, others / TICKS / seconds);
    } catch {
      return undefined;
    }
  };
};
