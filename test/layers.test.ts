/**
 * The layering of src/ (.dependency-cruiser.cjs): no folder imports a layer above its own, and there
 * are no import cycles. Checked with dependency-cruiser on the real tree, and on small trees that
 * break each rule, so the check is known to fail when it should.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT } from './helpers/cli.js';
import { tmpDir } from './helpers/tiny.js';

const CRUISER = path.join(ROOT, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const CONFIG = path.join(ROOT, '.dependency-cruiser.cjs');

function cruise(cwd: string) {
  const r = spawnSync(process.execPath, [CRUISER, '--config', CONFIG, 'src'], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** A throwaway tree of .ts files (path -> source) with the project's module settings. */
function tree(files: Record<string, string>): string {
  const dir = tmpDir('gta-layers-');
  fs.copyFileSync(path.join(ROOT, 'tsconfig.json'), path.join(dir, 'tsconfig.json'));
  for (const [f, src] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), src);
  }
  return dir;
}

test('src/ keeps its layers and has no import cycles', () => {
  const r = cruise(ROOT);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /no dependency violations found \((\d+) modules/);
  // the tree was really read (imports resolved from their .js specifiers to the .ts files)
  const [, modules] = /\((\d+) modules, (\d+) dependencies/.exec(r.out)!;
  assert.ok(Number(modules) > 50, r.out);
});

test('the layer check fails on an upward import, a cycle, and a folder outside the layers', () => {
  const upward = cruise(tree({ 'src/model/a.ts': "import type { B } from '../train/b.js';\nexport type A = B;\n", 'src/train/b.ts': 'export type B = number;\n' }));
  assert.notEqual(upward.code, 0);
  assert.match(upward.out, /model-imports-upward: src\/model\/a\.ts → src\/train\/b\.ts/);
  const cycle = cruise(tree({ 'src/util/a.ts': "import { b } from './b.js';\nexport const a = () => b();\n", 'src/util/b.ts': "import { a } from './a.js';\nexport const b = () => a();\n" }));
  assert.notEqual(cycle.code, 0);
  assert.match(cycle.out, /no-cycles/);
  const stray = cruise(tree({ 'src/misc/a.ts': "import { b } from '../util/b.js';\nexport const a = b;\n", 'src/util/b.ts': 'export const b = 1;\n' }));
  assert.notEqual(stray.code, 0);
  assert.match(stray.out, /src-outside-layers/);
});
