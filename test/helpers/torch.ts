/** Whether the torch tests can run here: the libtorch addon loads, or CI (GTA_TORCH_REQUIRED=1) fails instead of skipping. */
import { initBackend } from '../../src/backend/select.js';
import { loadNative } from '../../src/backend/torch/native.js';
import { useWasm } from './tiny.js';

/** Runs `f` on the torch backend, then returns to wasm (the backend the other tests expect), also when f throws. */
export async function onTorch(f: () => void | Promise<void>): Promise<void> {
  await initBackend('torch');
  try {
    await f();
  } finally {
    await useWasm();
  }
}

/** false when the addon loads; else the reason to skip (or, under GTA_TORCH_REQUIRED=1, the error thrown). */
export function torchUnavailable(): string | false {
  try {
    loadNative();
    return false;
  } catch (err) {
    if (process.env.GTA_TORCH_REQUIRED === '1') throw err;
    return `torch backend unavailable: ${(err as Error).message}`;
  }
}
