/**
 * Registers the `torch` backend with TensorFlow.js: the TorchBackend on a device, and every kernel of
 * kernels/ under the name 'torch'. Importing this does not load libtorch; `registerTorch` does.
 */
import tf from '../../util/tfjs.cjs';
import { TorchBackend } from './backend.js';
import { elementwiseKernels } from './kernels/elementwise.js';
import { fusedKernels } from './kernels/fused.js';
import { reduceKernels } from './kernels/reduce.js';
import { shapeKernels } from './kernels/shape.js';
import type { Info, KernelTable } from './kernels/common.js';
import { loadNative } from './native.js';

export const TORCH_KERNELS: KernelTable = { ...elementwiseKernels, ...reduceKernels, ...shapeKernels, ...fusedKernels };

let registered: TorchBackend | undefined;

/**
 * Loads the addon, sets its thread count, and registers backend 'torch' on `device` ('cpu' or
 * 'cuda:N'); throws with the reason when libtorch or the device is unavailable.
 */
export function registerTorch(device = 'cpu', threads?: number): TorchBackend {
  if (registered) return registered;
  const native = loadNative();
  const { cudaDevices } = native.info();
  const cuda = /^cuda(?::(\d+))?$/.exec(device);
  if (cuda && Number(cuda[1] ?? 0) >= cudaDevices) throw new Error(`${device} is not available (libtorch sees ${cudaDevices} CUDA device${cudaDevices === 1 ? '' : 's'})`);
  if (!cuda && device !== 'cpu') throw new Error(`unknown torch device '${device}' (expected cpu or cuda:N)`);
  // the same count for big work inside smaller counts set later (smallWork; native/gta_arch.h BigWork)
  if (threads) native.setThreads(threads, threads);
  const backend = new TorchBackend(native, device);
  tf.registerBackend('torch', () => backend, 0);
  for (const [kernelName, kernel] of Object.entries(TORCH_KERNELS)) {
    tf.registerKernel({
      kernelName,
      backendName: 'torch',
      kernelFunc: ({ inputs, backend: be, attrs }) => kernel(be as TorchBackend, inputs as Record<string, Info>, (attrs ?? {}) as Record<string, unknown>),
    });
  }
  registered = backend;
  return backend;
}
