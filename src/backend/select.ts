/**
 * Picks and initialises the TensorFlow.js backend.
 *
 * Fastest first: 'torch' (ATen through gta's libtorch addon, on CUDA when libtorch sees a GPU, else
 * the CPU with every core), 'tensorflow' (libtensorflow through @tensorflow/tfjs-node[-gpu], optional
 * packages whose install downloads libtensorflow), 'webgpu' (Dawn through the `webgpu` package), 'wasm'
 * (XNNPACK with SIMD), 'cpu' (plain JS). 'auto' takes the first that works and records why each faster one was
 * skipped, so a run can say what it ran on and why.
 */
import os from 'node:os';
import tf from '../util/tfjs.cjs';
import { GtaError } from '../util/errors.js';
import type { BackendName } from '../config/schema.js';
import { installFastGradients } from './fast_grads.js';

export interface BackendInfo {
  /** The tfjs backend in use: 'torch', 'tensorflow', 'webgpu', 'wasm' or 'cpu'. */
  name: string;
  /** What it runs on, e.g. 'wasm simd, 1 thread' or 'webgpu nvidia ampere (NVIDIA A100)'. */
  device: string;
  /** For 'auto', the faster backends that were tried first and why each failed. */
  tried: { name: string; error: string }[];
}

/** How long to wait for Dawn to answer requestAdapter before giving up on webgpu. */
const ADAPTER_TIMEOUT_MS = 5000;
/** tfjs-backend-webgpu then requests its own adapter and device: normally well under a second. */
const WEBGPU_INIT_TIMEOUT_MS = 20000;

type Concrete = Exclude<BackendName, 'auto'>;
/** Initialises one backend and makes it active; returns its device string or throws with the reason. */
const INIT: Record<Concrete, (auto: boolean) => Promise<string>> = {
  torch: initTorch,
  tensorflow: initTensorflow,
  webgpu: initWebgpu,
  wasm: initWasm,
  cpu: initCpu,
};
const AUTO_ORDER: Concrete[] = ['torch', 'tensorflow', 'webgpu', 'wasm', 'cpu'];

/**
 * Makes `requested` the active tfjs backend. An explicit backend that cannot start throws a GtaError
 * `backend 'X' is not available: <reason>`; 'auto' falls back along AUTO_ORDER and lists the failures.
 * Create tensors after this resolves, so they live on the chosen backend from the start (tfjs would
 * otherwise copy each one over on first use).
 */
export async function initBackend(requested: BackendName): Promise<BackendInfo> {
  installFastGradients();
  if (requested !== 'auto') {
    try {
      const device = await INIT[requested](false);
      quietCpuBanner();
      return { name: tf.getBackend(), device, tried: [] };
    } catch (err) {
      throw new GtaError(`backend '${requested}' is not available: ${reason(err)}`);
    }
  }
  const tried: BackendInfo['tried'] = [];
  for (const name of AUTO_ORDER) {
    try {
      const device = await INIT[name](true);
      quietCpuBanner();
      return { name: tf.getBackend(), device, tried };
    } catch (err) {
      tried.push({ name, error: reason(err) });
    }
  }
  // Unreachable in practice: the cpu backend is plain JS bundled with tfjs.
  throw new GtaError(`no backend is available: ${tried.map((t) => `${t.name}: ${t.error}`).join('; ')}`);
}

/** One line from any thrown value. */
function reason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].trim() || 'unknown error';
}

async function activate(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`tfjs could not initialise the ${name} backend`);
  await tf.ready();
}

async function initCpu(): Promise<string> {
  await activate('cpu');
  return 'js cpu';
}

/** How to change the torch backend's CPU thread count, once it runs on the CPU, and its two counts. */
let torchThreads: { set: (n: number) => void; large: number; small: number } | undefined;

/**
 * Runs `fn` with the torch backend at its thread count for small work (torch/threads.ts): rollouts
 * and RL updates are thousands of operators on a few thousand rows, where waking sleeping OpenMP
 * threads can cost more than another core gives back (on a 2-vCPU Xeon a GTA step took 0.155 s at 1
 * thread and 0.178 s at 2, while an LM-like step was 1.4x faster at 2). Other backends, a GPU, or the
 * same count for both: `fn` as it is.
 */
export function smallWork<T>(fn: () => T): T {
  const t = torchThreads;
  if (!t || t.small === t.large || tf.getBackend() !== 'torch') return fn();
  t.set(t.small);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    t.set(t.large);
    throw e;
  }
  // an asynchronous fn (a data-parallel update waits for the other ranks) keeps the count until it settles
  if (result instanceof Promise) return result.finally(() => t.set(t.large)) as T;
  t.set(t.large);
  return result;
}

/**
 * libtorch through gta's addon (src/backend/torch). Device: $GTA_TORCH_DEVICE, else cuda:0 when
 * libtorch sees a CUDA device, else cpu. Threads on the CPU: $GTA_THREADS, else the count measured
 * once for this machine (torch/threads.ts), with idle OpenMP threads sleeping rather than spinning.
 */
async function initTorch(): Promise<string> {
  const { builtVersion, loadNative } = await import('./torch/native.js');
  const { chooseThreads, ompWaitPolicy } = await import('./torch/threads.js');
  // before the addon loads: libgomp reads its wait policy once, when it starts
  process.env.OMP_WAIT_POLICY = ompWaitPolicy();
  const { registerTorch } = await import('./torch/register.js');
  const info = loadNative().info();
  const device = process.env.GTA_TORCH_DEVICE || (info.cudaDevices > 0 ? 'cuda:0' : 'cpu');
  if (device !== 'cpu') {
    registerTorch(device, os.availableParallelism());
    await activate('torch');
    return `libtorch ${info.version} ${device}`;
  }
  // measured (once per machine) only where the CPU does the work
  const choice = chooseThreads(builtVersion());
  const backend = registerTorch(device, choice.threads);
  await activate('torch');
  torchThreads = { set: (n) => backend.native.setThreads(n), large: choice.threads, small: choice.small };
  const times = (w: 'large' | 'small') => Object.entries(choice.measured?.[w] ?? {}).map(([n, ms]) => `${n}t ${ms} ms`).join(', ');
  const how = choice.measured ? `${choice.source}: large ${times('large')}; small ${times('small')}` : choice.source;
  const plural = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;
  return `libtorch ${info.version} cpu, ${plural(choice.threads)}, ${plural(choice.small)} for rollouts and RL updates (${how}; OMP_WAIT_POLICY=${choice.waitPolicy})`;
}

async function initWasm(): Promise<string> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  await activate('wasm');
  // The flags are async (feature detection); multithreading is always off under Node in tfjs 4.x.
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) ? 'simd' : 'no simd';
  const threads = wasm.getThreadsCount();
  return `wasm ${simd}, ${threads} thread${threads === 1 ? '' : 's'}`;
}

/**
 * libtensorflow through tfjs-node-gpu, else tfjs-node. Both `require('@tensorflow/tfjs')` and register
 * their 'tensorflow' backend and kernels on import. tfjs keeps its engine and its kernel registry on
 * the global object (`_tfengine`, `_tfGlobals`), so even if one of them resolves its own copy of
 * tfjs-core the backend lands on the engine this module uses; the kernel check below confirms it.
 */
async function initTensorflow(): Promise<string> {
  const failures: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      // A string variable, not a literal, so TypeScript does not need the (optional) package's types.
      const spec: string = pkg;
      await import(spec);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const missing = e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes(`'${pkg}'`);
      if (!missing) failures.push(`${pkg} failed to load: ${reason(err)}`);
      continue;
    }
    if (!tf.getKernel('BatchMatMul', 'tensorflow')) {
      failures.push(`${pkg} registered its kernels on another copy of tfjs-core`);
      continue;
    }
    await activate('tensorflow');
    return `libtensorflow (${pkg.slice('@tensorflow/'.length)})`;
  }
  if (failures.length > 0) throw new Error(failures.join('; '));
  throw new Error('@tensorflow/tfjs-node-gpu and @tensorflow/tfjs-node are not installed (their install needs to download libtensorflow)');
}

/** Minimal view of a Dawn adapter: `info` in current WebGPU, `requestAdapterInfo()` in older builds. */
interface Adapter {
  info?: AdapterInfo;
  isFallbackAdapter?: boolean;
  requestAdapterInfo?: () => Promise<AdapterInfo>;
}
interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface Gpu {
  requestAdapter(opts?: { powerPreference?: string }): Promise<Adapter | null>;
}

/** Software Vulkan/GL implementations: they run WebGPU on the CPU, slower than the wasm backend. */
const SOFTWARE_ADAPTER = /swiftshader|lavapipe|llvmpipe|softpipe|software|basic render|\bnull\b/i;

/**
 * WebGPU through Dawn. Dawn looks for a GPU synchronously and answers requestAdapter with null when
 * there is none, but a broken driver can stall it, hence the timeout. tfjs-backend-webgpu registers
 * itself on import only if `navigator.gpu` exists, so that is set first; it is removed again on
 * failure, because a live Dawn instance keeps Node from exiting.
 */
async function initWebgpu(auto: boolean): Promise<string> {
  const { create, globals } = await import('webgpu');
  // GPUBufferUsage, GPUMapMode, ... which tfjs-backend-webgpu reads as globals.
  Object.assign(globalThis, globals);
  const gpu = create([]) as unknown as Gpu;
  const adapter = await withTimeout(gpu.requestAdapter({ powerPreference: 'high-performance' }), ADAPTER_TIMEOUT_MS, 'requestAdapter');
  if (!adapter) throw new Error('no WebGPU adapter found (Dawn found no usable GPU driver: Vulkan, Metal or D3D12)');
  const info = adapter.info ?? (adapter.requestAdapterInfo ? await adapter.requestAdapterInfo() : {});
  const desc = [info.vendor, info.architecture, info.device, info.description].filter((s) => s).join(' ') || 'unknown adapter';
  const software = adapter.isFallbackAdapter || info.isFallbackAdapter || SOFTWARE_ADAPTER.test(desc);
  if (auto && software) throw new Error(`only a software adapter (${desc}), slower than wasm`);

  setNavigatorGpu(gpu);
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
    await withTimeout(activate('webgpu'), WEBGPU_INIT_TIMEOUT_MS, 'webgpu backend initialisation');
  } catch (err) {
    setNavigatorGpu(undefined);
    throw err;
  }
  return `webgpu ${desc}${software ? ' (software)' : ''}`;
}

/** Node 20 has no `navigator`; Node 21+ has one without `gpu`. */
function setNavigatorGpu(gpu: Gpu | undefined): void {
  const g = globalThis as { navigator?: object };
  if (g.navigator === undefined) {
    if (gpu === undefined) return;
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  }
  Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The cpu backend prints "Hi, looks like you are running TensorFlow.js in Node.js. To speed things up
 * dramatically, install our node backend..." on its first tensor when the IS_NODE flag is set. We
 * already try that node backend first and record why it was skipped, so the banner is noise. Its only
 * switches are IS_NODE (which other code relies on), PROD/IS_TEST (which mute every tfjs warning), or
 * the backend's private `firstUse` field, which gates nothing else; we clear that field. Done for
 * every backend: webgpu, for one, runs small ops on the cpu backend (its WEBGPU_CPU_FORWARD flag).
 */
function quietCpuBanner(): void {
  const backend = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (backend && typeof backend.firstUse === 'boolean') backend.firstUse = false;
}
