/**
 * Progress for long loops: a cli-progress bar on stderr when it is a terminal, otherwise a plain log
 * line every few seconds (so CI logs and redirected output stay readable).
 *
 * On a terminal a bar always draws on the line the cursor is on and leaves it empty, cursor at column 0,
 * when it stops; so whatever comes next (the result on stdout, an error) starts on a clean line. A bar
 * started while another is showing (an eval during training) takes the line: the outer bar is put away
 * and drawn again when the inner one stops. A log line printed while a bar shows (see `aboveProgress`)
 * clears the bar's line first; the bar is drawn again below it at its next update (src/util/tty_line.ts).
 */
import cliProgress from 'cli-progress';
import type { Logger } from './log.js';
import { formatNumber } from './format.js';
import { liveBars as live, type LiveBar } from './tty_line.js';

export { aboveProgress, stopAllProgress } from './tty_line.js';

export interface Progress {
  update(done: number, info?: Record<string, string | number>): void;
  stop(): void;
}

export function startProgress(
  label: string,
  total: number,
  log: Logger,
  everySeconds = 10,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (stream.isTTY && log.level !== 'silent') return ttyBar(label, total, stream);
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

function ttyBar(label: string, total: number, stream: NodeJS.WriteStream): Progress {
  const bar = new cliProgress.SingleBar(
    // forceRedraw: a log line may have cleared the bar's line while its text stayed the same.
    { format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted} {info}`, stream, hideCursor: true, clearOnComplete: true, forceRedraw: true },
    cliProgress.Presets.shades_classic,
  );
  // cli-progress saves the cursor when a bar starts and restores it when it stops (ESC 7, ESC 8). A
  // terminal has one such slot: with a bar started inside another, or log lines printed meanwhile, stop()
  // jumped back to a stale position and cleared the wrong line, and the last frame stayed where the
  // final result was then printed. These bars always draw on the current line, so nothing is saved.
  const terminal = (bar as unknown as { terminal: { cursorSave(): void; cursorRestore(): void } }).terminal;
  terminal.cursorSave = () => {};
  terminal.cursorRestore = () => {};

  let value = 0;
  let payload = { info: '' };
  let showing = false;
  const show = () => {
    if (showing) return;
    bar.start(total, value, payload);
    showing = true;
  };
  const hide = () => {
    if (!showing) return;
    bar.stop(); // clearOnComplete: the line is left empty, the cursor at column 0
    showing = false;
  };
  const me: LiveBar = { stream, suspend: hide, resume: show };
  live.at(-1)?.suspend();
  live.push(me);
  show();
  let stopped = false;
  return {
    update(done, info) {
      if (stopped) return;
      value = done;
      payload = { info: info ? fmt(info) : '' };
      if (showing) bar.update(done, payload);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      hide();
      const i = live.indexOf(me);
      if (i >= 0) live.splice(i, 1);
      if (i === live.length) live.at(-1)?.resume();
    },
  };
}

function fmt(info: Record<string, string | number>): string {
  return Object.entries(info)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`)
    .join(' ');
}
