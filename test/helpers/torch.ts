/** Whether the torch tests can run here: the libtorch addon loads, or CI (GTA_TORCH_REQUIRED=1) fails instead of skipping. */
import { loadNative } from '../../src/backend/torch/native.js';

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
