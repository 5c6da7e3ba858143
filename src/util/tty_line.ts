/**
 * Who owns the terminal's current line: the progress bars drawn on it (src/util/progress.ts) and the
 * log lines printed between their frames (src/util/log.ts). Its own module so that the logger and the
 * bars, which both need it, do not import each other.
 */

/** What a bar on the terminal must do when another bar, a log line or an error needs the line. */
export interface LiveBar {
  stream: NodeJS.WritableStream;
  /** Stops drawing and leaves the line empty, the cursor at column 0. */
  suspend(): void;
  /** Draws again on the current line. */
  resume(): void;
}

/** The bars started on the terminal and not yet stopped, innermost last; only the last one is drawn. */
export const liveBars: LiveBar[] = [];

/**
 * Runs `write` (which prints a line to the terminal) with the bar being drawn, if any, cleared from the
 * line first, so the line does not land in the middle of a frame; the bar draws again at its next update.
 */
export function aboveProgress(write: () => void): void {
  const top = liveBars.at(-1);
  if (top) top.stream.write('\r\x1b[2K');
  write();
}

/** Puts away every bar still on the terminal (an error ends the command): the cursor shown, the line empty. */
export function stopAllProgress(): void {
  for (const b of liveBars.splice(0).reverse()) b.suspend();
}
