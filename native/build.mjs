#!/usr/bin/env node
/**
 * `npm ci` runs this (package.json "install"): builds the torch backend's addon when a libtorch is
 * found (see find_libtorch.mjs) and otherwise skips it. It never fails the install: without the addon
 * the `torch` backend reports why it is unavailable (native/build/status.json) and `auto` uses wasm.
 *
 * On a Debian/Ubuntu machine where the install runs as root and no libtorch is found, it first
 * installs Debian's libtorch-dev and OpenBLAS (OpenMP build) with apt-get (a few minutes, once), so a
 * plain `npm ci` sets up the fast engine. GTA_TORCH=0 skips all of this; GTA_TORCH=1 makes a failed
 * build fail the install.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch } from './find_libtorch.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const statusFile = path.join(here, 'build', 'status.json');

function finish(ok, reason, extra = {}) {
  mkdirSync(path.dirname(statusFile), { recursive: true });
  writeFileSync(statusFile, JSON.stringify({ ok, reason, ...extra }, null, 2) + '\n');
  console.error(`gta: torch backend ${ok ? 'built' : 'skipped'}: ${reason}`);
  if (!ok && process.env.GTA_TORCH === '1') process.exit(1);
  process.exit(0);
}

if (process.env.GTA_TORCH === '0') finish(false, 'GTA_TORCH=0 at install time');
let torch = findLibtorch();
if (!torch && process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0) {
  console.error('gta: no libtorch found; installing Debian\'s libtorch-dev and libopenblas0-openmp for the torch backend (GTA_TORCH=0 skips this) ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0;
  const pkgs = ['install', '-y', '--no-install-recommends', 'libtorch-dev', 'libopenblas0-openmp'];
  if (apt(pkgs) || (apt(['update']) && apt(pkgs))) torch = findLibtorch();
}
if (!torch) finish(false, 'no libtorch found at install time (set LIBTORCH, install a Python torch, or apt-get install libtorch-dev libopenblas0-openmp), then run `npm run build:torch`');

/** npm's bundled node-gyp: npm names it in npm_config_node_gyp inside lifecycle scripts. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const npmCli = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout?.trim();
  for (const p of [npmCli && path.join(npmCli, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')]) if (p && existsSync(p)) return p;
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return null;
  }
}
const gyp = nodeGyp();
if (!gyp) finish(false, 'node-gyp not found (it comes with npm)');

// Node's own headers (npm's nodedir), so node-gyp need not download them.
const nodedir = process.env.npm_config_nodedir || path.resolve(path.dirname(process.execPath), '..');
const args = [gyp, 'rebuild', `--directory=${here}`, `--jobs=${process.env.JOBS || 'max'}`];
if (existsSync(path.join(nodedir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodedir}`);
console.error(`gta: building the torch backend against ${torch.how}${torch.cuda ? ' with CUDA' : ''} ...`);
const res = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
if (res.status !== 0) {
  const tail = `${res.stdout}\n${res.stderr}`.split('\n').filter((l) => /error|Error/.test(l)).slice(0, 5).join(' | ');
  finish(false, `the addon failed to build against ${torch.how}: ${tail || `node-gyp exited ${res.status}`}`);
}
finish(true, `built against ${torch.how}${torch.cuda ? ' with CUDA' : ''}`, { libtorch: torch.how, cuda: torch.cuda });
