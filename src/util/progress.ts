/**
 * Progress for long loops: a cli-progress bar on stderr when it is a terminal, otherwise a plain log
 * line every few seconds (so CI logs and redirected output stay readable).
 */
import cliProgress from 'cli-progress';
import type { Logger } from './log.js';

export interface Progress {
  update(done: number, info?: Record<string, string | number>): void;
  stop(): void;
}

export function startProgress(label: string, total: number, log: Logger, everySeconds = 10): Progress {
  if (process.stderr.isTTY && log.level !== 'silent') {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted} {info}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { info: '' });
    return {
      update: (done, info) => bar.update(done, { info: info ? fmt(info) : '' }),
      stop: () => bar.stop(),
    };
  }
  let last = performance.now();
  return {
    update(done, info) {
      const now = performance.now();
      if (now - last < everySeconds * 1000 && done < total) return;
      last = now;
      log.info(`${label} ${done}/${total}${info ? ' ' + fmt(info) : ''}`);
    },
    stop() {},
  };
}

function fmt(info: Record<string, string | number>): string {
  return Object.entries(info)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(4)) : v}`)
    .join(' ');
}
