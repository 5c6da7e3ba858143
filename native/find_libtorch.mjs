#!/usr/bin/env node
/**
 * Finds a libtorch to build the torch backend against, in this order:
 *   1. $LIBTORCH: an unpacked libtorch (include/ and lib/), e.g. the zip from pytorch.org;
 *   2. the Python torch that `python3` imports (pip or conda wheels ship libtorch and its headers);
 *   3. Debian's libtorch-dev (headers in /usr/include, libraries in /usr/lib/<triplet>).
 * `node native/find_libtorch.mjs` prints the result as JSON; binding.gyp asks for single fields
 * (`includes`, `libdirs`, `libs`, `defines`, `distDefines`, `ldflags`) as space-separated words.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

function fromDir(root, how) {
  const inc = path.join(root, 'include');
  const lib = path.join(root, 'lib');
  if (!existsSync(path.join(inc, 'ATen', 'ATen.h')) || !existsSync(path.join(lib, 'libtorch_cpu.so'))) return null;
  return { how, includes: [inc, path.join(inc, 'torch', 'csrc', 'api', 'include')], libdir: lib, abi: null };
}

function fromPython() {
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean)) {
    try {
      const out = execFileSync(py, ['-c', 'import torch, os, json; print(json.dumps([os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI), torch.__version__]))'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const [root, abi, version] = JSON.parse(out);
      const found = fromDir(root, `python torch ${version} (${py})`);
      if (found) return { ...found, abi };
    } catch {
      // no torch for this interpreter
    }
  }
  return null;
}

function fromDebian() {
  if (!existsSync('/usr/include/ATen/ATen.h')) return null;
  const libdir = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib'].find((d) => existsSync(path.join(d, 'libtorch_cpu.so')));
  if (!libdir) return null;
  return { how: 'Debian libtorch-dev', includes: ['/usr/include', '/usr/include/torch/csrc/api/include'], libdir, abi: 1 };
}

function hasGloo(includes) {
  const c10d = includes.some((d) => existsSync(path.join(d, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp')));
  return c10d && [...includes, '/usr/include'].some((d) => existsSync(path.join(d, 'gloo', 'config.h')));
}

export function findLibtorch() {
  const found = (process.env.LIBTORCH && fromDir(process.env.LIBTORCH, `$LIBTORCH (${process.env.LIBTORCH})`)) || fromPython() || fromDebian();
  if (!found) return null;
  const libs = readdirSync(found.libdir);
  const cuda = libs.includes('libtorch_cuda.so');
  const names = ['torch', 'torch_cpu', 'c10', ...(cuda ? ['torch_cuda', 'c10_cuda'] : [])];
  const includes = [...found.includes];
  if (cuda) for (const d of [process.env.CUDA_HOME && path.join(process.env.CUDA_HOME, 'include'), '/usr/local/cuda/include']) if (d && existsSync(d)) includes.push(d);
  return {
    how: found.how,
    cuda,
    includes,
    libdirs: [found.libdir],
    libs: names.map((n) => `-l${n}`),
    defines: [`_GLIBCXX_USE_CXX11_ABI=${found.abi ?? 1}`],
    // data-parallel training (native/dist.cc): c10d's Gloo process group needs the Gloo headers too
    // (Debian: libgloo-dev), which libtorch's own include folder may lack
    distDefines: hasGloo(includes) ? ['GTA_DIST', 'USE_C10D_GLOO'] : [],
    // --no-as-needed keeps libtorch_cuda loaded (it registers the CUDA kernels) though no symbol is used.
    ldflags: ['-Wl,--no-as-needed', `-Wl,-rpath,${found.libdir}`],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const found = findLibtorch();
  const field = process.argv[2];
  if (!field) console.log(JSON.stringify(found, null, 2));
  else if (!found) process.exit(1);
  else console.log([].concat(found[field]).join(' '));
}
