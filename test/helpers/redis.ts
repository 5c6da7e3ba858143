/**
 * A redis-server of a test's own: a free loopback port, a password, its files in a temporary folder;
 * never a system-wide instance. `restart` kills it with SIGKILL and starts it again on the same port
 * and folder (with appendonly, from its append-only file).
 */
import fs from 'node:fs';
import { freePort } from '../../src/cli/launch.js';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';

export interface TestRedis {
  port: number;
  password: string;
  /** redis://:password@127.0.0.1:port */
  url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(dir: string, opts: { appendonly?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort();
  const password = crypto.randomBytes(12).toString('hex');
  const data = path.join(dir, 'redis');
  fs.mkdirSync(data, { recursive: true });
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--dir', data,
    ...(opts.appendonly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'])];
  let proc: ChildProcess;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.on('error', (e) => {
        clearTimeout(timer);
        reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? new Error('redis-server not found: apt-get install redis-server (.ci/run does)') : e);
      });
    });
  const kill = () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  await start();
  return {
    port,
    password,
    url: `redis://:${password}@127.0.0.1:${port}`,
    restart: async () => {
      await kill();
      await start();
    },
    stop: kill,
  };
}
