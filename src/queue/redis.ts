/**
 * Where the queue lives: `redis://[user:password@]host:port[/db]`, the password from the URL or
 * GTA_REDIS_PASSWORD (which keeps it out of `ps` and shell history). The password is never shown: every
 * message names the URL with it masked, and connection errors are checked before BullMQ takes over.
 */
import { Redis } from 'ioredis';
import { GtaError } from '../util/errors.js';

/** The environment variable a password may come from when the URL has none. */
export const PASSWORD_ENV = 'GTA_REDIS_PASSWORD';
/** BullMQ's key prefix and queue name for sweep runs. */
export const QUEUE_PREFIX = 'gta';
export const QUEUE_NAME = 'runs';

export interface RedisTarget {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  /** The URL as it may be printed: the password masked. */
  shown: string;
}

const FORM = 'redis://[user:password@]host:port[/db]';

export function parseRedisUrl(url: string, env: NodeJS.ProcessEnv = process.env): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // the text itself may hold a password: not echoed
    throw new GtaError(`--queue: not a URL of the form ${FORM}`);
  }
  const password = u.password ? decodeURIComponent(u.password) : env[PASSWORD_ENV] || undefined;
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  const shown = `${u.protocol}//${username ?? ''}${password ? ':***' : ''}${username || password ? '@' : ''}${u.hostname}:${port}/${dbText || 0}`;
  if (u.protocol !== 'redis:') throw new GtaError(`--queue ${shown}: only redis:// URLs are supported (${FORM})`);
  if (!u.hostname) throw new GtaError(`--queue ${shown}: no host (${FORM})`);
  if (!Number.isInteger(db) || db < 0) throw new GtaError(`--queue ${shown}: the database is a number (${FORM}), got '${dbText}'`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port, db, username, password, shown };
}

/** A connection for BullMQ: it waits out a Redis restart (reconnecting, commands held) instead of failing. */
export function connection(t: RedisTarget): Redis {
  return new Redis({ host: t.host, port: t.port, db: t.db, username: t.username, password: t.password, maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(200 * n, 2000) });
}

/** Connects once, with no retries, so that a wrong address or password is one clear line instead of endless reconnects. */
export async function checkConnection(t: RedisTarget): Promise<void> {
  const probe = new Redis({ host: t.host, port: t.port, db: t.db, username: t.username, password: t.password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 5000, enableOfflineQueue: false });
  // the cause (a refused connection, a wrong password) comes as an error event; connect() then only says the connection closed
  let cause: unknown;
  probe.on('error', (e) => (cause ??= e));
  try {
    await probe.connect();
    await probe.ping();
  } catch (e) {
    throw new GtaError(`${t.shown}: ${describeError(cause ?? e, t)}`, 1);
  } finally {
    probe.disconnect();
  }
}

/** An error's first line for people, with the password masked should a driver ever echo it. */
export function describeError(e: unknown, t: RedisTarget): string {
  const msg = String((e as Error)?.message ?? e).split('\n')[0];
  const masked = t.password ? msg.split(t.password).join('***') : msg;
  if (/WRONGPASS|NOAUTH|invalid password|AUTH/i.test(masked)) return `authentication failed (wrong or missing password: give it in the URL or ${PASSWORD_ENV})`;
  if (/ECONNREFUSED/.test(masked)) return 'connection refused (is redis-server running there, on that port?)';
  return masked;
}
