#!/usr/bin/env node
/**
 * tfjs-core's own backend-agnostic kernel specs (node_modules/@tensorflow/tfjs-core/dist/*_test.js,
 * the files its tests.js lists) run under Jasmine against the `torch` backend on the CPU.
 *
 * esbuild bundles the specs, tfjs-core's jasmine_util and our compiled backend (dist/) into one file,
 * so there is a single copy of tfjs-core: `@tensorflow/tfjs` in our code is aliased to tfjs-core's
 * ESM entry, the one the specs import by relative path. jasmine_util's setTestEnvs makes 'torch' the
 * only test environment, so every describeWithFlags suite runs once, on torch. Each registered torch
 * kernel is wrapped to record which kernels a spec calls.
 *
 * Every spec that ran ends in one class:
 *   passed            it passed and called at least one torch kernel
 *   failed            a real failure, in none of the classes below, of a spec that called a torch
 *                     kernel or ran in a describeWithFlags suite on the torch backend (a wrong read
 *                     or write of the backend's storage counts even when no kernel ran)
 *   not registered    it needs a kernel the torch backend does not register ("Kernel 'X' not
 *                     registered for backend 'torch'"): we only claim the kernels we register
 *   unsupported dtype it needs complex64 or string tensors, which the torch backend does not have
 *   listed            named in tfjs_kernel_tests.skip.json with a reason (not run unless --run-listed)
 *   no torch kernel   it passed without calling any torch kernel (argument checks, tensor creation,
 *                     tfjs-core's own utilities and io), or failed outside the torch suites: not a
 *                     kernel spec, not counted
 *   excluded          xit / pending in tfjs-core itself
 * Exits 1 when there is a real failure (or when a listed spec no longer exists).
 *
 * Usage: node scripts/tfjs_kernel_tests.mjs [--filter TEXT] [--files REGEX] [--verbose] [--run-listed]
 *                                           [--json FILE]
 *   --filter TEXT  only specs whose full name contains TEXT
 *   --files REGEX  only spec files (paths as in tests.js, e.g. ops/add_test) matching REGEX
 *   --verbose      print every non-passing spec with its class and first message
 *   --run-listed   run the listed specs too and say which of them now pass
 *   --json FILE    write every spec's name, class, kernels and messages to FILE
 * The libtorch addon must be built (npm run build:torch); when it is not, the script says why and exits
 * 0, or 1 with GTA_TORCH_REQUIRED=1, as test/torch.test.ts does. Needs `npx tsc` first (dist/).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const require = createRequire(import.meta.url);
const coreDist = path.join(repo, 'node_modules', '@tensorflow', 'tfjs-core', 'dist');
const registerJs = path.join(repo, 'dist', 'src', 'backend', 'torch', 'register.js');
const skipFile = path.join(here, 'tfjs_kernel_tests.skip.json');
const outDir = path.join(repo, 'node_modules', '.cache', 'gta-tfjs-kernel-tests');

// ---- arguments ----
const opts = { filter: '', files: null, verbose: false, runListed: false, json: null };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--filter') opts.filter = process.argv[++i];
  else if (a === '--files') opts.files = new RegExp(process.argv[++i]);
  else if (a === '--verbose') opts.verbose = true;
  else if (a === '--run-listed') opts.runListed = true;
  else if (a === '--json') opts.json = process.argv[++i];
  else {
    console.error(`unknown argument ${a} (see the comment at the top of ${path.relative(repo, fileURLToPath(import.meta.url))})`);
    process.exit(2);
  }
}

const t0 = performance.now();

// ---- the addon must be there ----
if (!fs.existsSync(registerJs)) {
  console.error(`${path.relative(repo, registerJs)} is missing: compile first (npx tsc -p tsconfig.json)`);
  process.exit(1);
}
{
  const { loadNative } = await import(pathToFileURL(path.join(repo, 'dist', 'src', 'backend', 'torch', 'native.js')).href);
  try {
    loadNative();
  } catch (err) {
    console.log(`tfjs-core kernel specs on torch: not run, torch backend unavailable: ${err.message}`);
    process.exit(process.env.GTA_TORCH_REQUIRED === '1' ? 1 : 0);
  }
}

// ---- the skip list ----
/** @type {{name: string, reason: string}[]} */
const listed = JSON.parse(fs.readFileSync(skipFile, 'utf8')).specs;
const listedReason = new Map(listed.map((s) => [s.name, s.reason]));

// ---- bundle ----
const specFiles = fs
  .readFileSync(path.join(coreDist, 'tests.js'), 'utf8')
  .split('\n')
  .map((l) => /^import '\.\/(.+)';/.exec(l)?.[1])
  .filter((f) => f && (!opts.files || opts.files.test(f)));
if (specFiles.length === 0) {
  console.error('no spec file matches --files');
  process.exit(2);
}
const { build } = await import('esbuild');
fs.mkdirSync(outDir, { recursive: true });
const bundle = path.join(outDir, `bundle-${process.pid}.mjs`); // one per run: two runs at once do not clash
// what @tensorflow/tfjs adds to tfjs-core and the specs expect: gradients and chained ops (x.add(y))
const setupSource = `
import * as tf from '@tensorflow/tfjs-core/dist/index.js';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
import { setTestEnvs } from '@tensorflow/tfjs-core/dist/jasmine_util.js';
import { registerTorch, TORCH_KERNELS } from ${JSON.stringify(registerJs)};
globalThis.__gtaKernelTests.setup({ tf, setTestEnvs, registerTorch, TORCH_KERNELS });
`;
await build({
  stdin: {
    // setup is imported first, so the test environment exists before any spec file runs describeWithFlags
    contents: ['import "gta:setup";', ...specFiles.map((f) => `import ${JSON.stringify(path.join(coreDist, f + '.js'))};`)].join('\n'),
    resolveDir: repo,
    sourcefile: 'tfjs-kernel-tests-entry.js',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile: bundle,
  // tfjs-core marks its files side-effect free; the spec files are nothing but side effects
  ignoreAnnotations: true,
  // the ESM entry (dist/index.js), the copy the specs import relatively; never tf-core.node.js
  mainFields: ['module', 'main'],
  alias: { '@tensorflow/tfjs': '@tensorflow/tfjs-core' },
  external: ['jasmine-core', 'jasmine-core/*'],
  banner: { js: "import { createRequire as __gtaCreateRequire } from 'node:module'; const require = __gtaCreateRequire(import.meta.url);" },
  logLevel: 'error',
  plugins: [
    {
      name: 'gta-setup',
      setup(b) {
        b.onResolve({ filter: /^gta:setup$/ }, () => ({ path: 'setup', namespace: 'gta' }));
        b.onLoad({ filter: /.*/, namespace: 'gta' }, () => ({ contents: setupSource, resolveDir: repo, loader: 'js' }));
      },
    },
  ],
});
const bundleText = fs.readFileSync(bundle, 'utf8');
if (bundleText.includes('tf-core.node.js') || bundleText.includes('tfjs-core/dist/tf-core')) {
  console.error('the bundle holds a second copy of tfjs-core (tf-core.node.js): kernels would not reach the specs');
  process.exit(1);
}

// ---- jasmine ----
const jasmineRequire = require('jasmine-core/lib/jasmine-core/jasmine.js');
const jasmine = require('jasmine-core/lib/jasmine-core/node_boot.js')(jasmineRequire);
jasmine.DEFAULT_TIMEOUT_INTERVAL = 20000;
const env = jasmine.getEnv();
env.configure({ random: false, verboseDeprecations: false });

/** Per spec: the torch kernels it called and the backend active when it started. */
let current = { kernels: new Set(), backend: null };
let api;
globalThis.__gtaKernelTests = {
  setup(a) {
    api = a;
    a.registerTorch('cpu', 1);
    // wrap each registered torch kernel (unregister, register again) to record the calls
    for (const name of Object.keys(a.TORCH_KERNELS)) {
      const k = a.tf.getKernel(name, 'torch');
      if (!k) throw new Error(`torch kernel ${name} is in TORCH_KERNELS but not registered`);
      a.tf.unregisterKernel(name, 'torch');
      a.tf.registerKernel({
        ...k,
        kernelFunc: (args) => {
          current.kernels.add(name);
          return k.kernelFunc(args);
        },
      });
    }
    a.setTestEnvs([{ name: 'torch', backendName: 'torch', flags: {}, isDataSync: true }]);
  },
};

const DTYPE_ERROR = /the torch backend has no (complex64|string|\w+) tensors/;
const NOT_REGISTERED = /Kernel '(\w+)' not registered for backend 'torch'/;
/** Kernels that exist only for complex64 or string tensors: missing them is a dtype matter. */
const DTYPE_KERNELS = /^(Complex|Real|Imag|ComplexAbs|FFT|IFFT|RFFT|IRFFT|String\w+|StaticRegexReplace|DecodeBase64|EncodeBase64)$/;

const results = [];
const missingKernels = new Map();
env.addReporter({
  specStarted() {
    current = { kernels: new Set(), backend: null };
  },
  specDone(r) {
    if (r.status === 'excluded' && opts.filter && !r.fullName.includes(opts.filter)) return; // not asked for
    if (r.status === 'excluded' || r.status === 'pending') {
      results.push({ name: r.fullName, cls: listedReason.has(r.fullName) ? 'listed' : 'excluded', kernels: [], messages: [] });
      return;
    }
    const messages = r.failedExpectations.map((e) => e.message);
    const all = messages.join('\n');
    const kernels = [...current.kernels];
    let cls;
    let detail;
    const dtype = DTYPE_ERROR.exec(all);
    const missing = [...all.matchAll(new RegExp(NOT_REGISTERED, 'g'))].map((m) => m[1]);
    if (listedReason.has(r.fullName)) cls = 'listed';
    else if (r.status === 'passed') cls = kernels.length ? 'passed' : 'no torch kernel';
    else if (dtype || (missing.length && missing.every((k) => DTYPE_KERNELS.test(k)))) {
      cls = 'unsupported dtype';
      detail = dtype ? dtype[1] : missing.join(',');
    } else if (missing.length) {
      cls = 'not registered';
      detail = [...new Set(missing)].join(',');
      for (const k of new Set(missing)) missingKernels.set(k, (missingKernels.get(k) ?? 0) + 1);
    } else cls = kernels.length || current.backend === 'torch' ? 'failed' : 'no torch kernel';
    results.push({ name: r.fullName, cls, status: r.status, detail, kernels, backend: current.backend, messages });
  },
});
// every spec records the backend it runs on (after its suite's beforeAll has set it)
beforeEach(() => {
  current.backend = api.tf.getBackend();
});
if (opts.filter || !opts.runListed) {
  env.configure({
    specFilter: (spec) => {
      const name = spec.getFullName();
      if (opts.filter && !name.includes(opts.filter)) return false;
      return opts.runListed || !listedReason.has(name);
    },
  });
}

try {
  await import(pathToFileURL(bundle).href);
} finally {
  fs.rmSync(bundle, { force: true });
}
const tLoaded = performance.now();
await new Promise((resolve) => {
  env.addReporter({ jasmineDone: resolve });
  env.execute();
});
const tDone = performance.now();

// ---- report ----
const count = (cls) => results.filter((r) => r.cls === cls).length;
const suiteOf = (name) => name.split(' torch {} ')[0];
const failed = results.filter((r) => r.cls === 'failed');
const wrongBackend = results.filter((r) => r.kernels.length && r.backend !== 'torch');
if (opts.verbose) {
  for (const r of results.filter((x) => !['passed', 'failed', 'no torch kernel', 'excluded'].includes(x.cls))) {
    console.log(`[${r.cls}${r.detail ? `: ${r.detail}` : ''}] ${r.name}${r.cls === 'listed' ? ` — ${listedReason.get(r.name)}` : ''}`);
  }
  for (const r of results.filter((x) => x.cls === 'no torch kernel' && x.status === 'failed')) {
    console.log(`[no torch kernel, failed] ${r.name}: ${r.messages[0]?.split('\n')[0]}`);
  }
}
if (missingKernels.size) {
  const list = [...missingKernels].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} (${n})`);
  console.log(`kernels not registered for torch that specs needed: ${list.join(', ')}`);
}
for (const r of failed) {
  console.log(`FAILED ${r.name}\n  kernels: ${r.kernels.join(', ')}`);
  for (const m of r.messages.slice(0, 3)) console.log(`  ${m.split('\n').slice(0, 4).join('\n  ')}`);
}
if (opts.runListed) {
  const nowPass = results.filter((r) => r.cls === 'listed' && r.status === 'passed');
  for (const r of nowPass) console.log(`listed spec now passes (remove it from the skip list): ${r.name}`);
}
const names = new Set(results.map((r) => r.name));
const stale = opts.filter || opts.files ? [] : listed.filter((s) => !names.has(s.name));
for (const s of stale) console.log(`listed spec does not exist (fix the skip list): ${s.name}`);
for (const r of wrongBackend) console.log(`spec called torch kernels on backend ${r.backend}: ${r.name}`);
if (opts.json) {
  fs.writeFileSync(opts.json, JSON.stringify({ specFiles, results }, null, 1) + '\n');
  console.log(`wrote ${opts.json}`);
}
const passed = count('passed');
const skipped = count('not registered') + count('unsupported dtype') + count('listed');
const suites = new Set(results.filter((r) => r.cls === 'passed').map((r) => suiteOf(r.name))).size;
console.log(
  `${specFiles.length} spec files, ${results.length} specs (${count('excluded')} xit in tfjs-core) in ${((tDone - t0) / 1000).toFixed(1)} s ` +
    `(bundle and load ${((tLoaded - t0) / 1000).toFixed(1)} s); ${count('no torch kernel')} called no torch kernel ` +
    `and are not counted; passed specs cover ${suites} suites`,
);
console.log(
  `tfjs-core kernel specs on torch: ${passed} passed, ${failed.length} failed, ${skipped} skipped ` +
    `(not registered: ${count('not registered')}, unsupported dtype: ${count('unsupported dtype')}, listed: ${count('listed')})`,
);
process.exit(failed.length || stale.length || wrongBackend.length || passed === 0 ? 1 : 0);
