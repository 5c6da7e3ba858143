/** pino on stderr: readable lines on a terminal, NDJSON otherwise (for files and log collectors). */
import { pino, destination, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { aboveProgress } from './tty_line.js';

export type { Logger };
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function createLogger(level: string = 'info'): Logger {
  if (process.stderr.isTTY) {
    // Formatted here and written synchronously, after clearing a progress bar's line if one is drawn.
    const prettify = prettyFactory({ colorize: true, singleLine: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' });
    return pino({ level }, { write: (line: string) => aboveProgress(() => process.stderr.write(prettify(line))) });
  }
  return pino({ level, base: undefined }, destination({ dest: 2, sync: true }));
}
