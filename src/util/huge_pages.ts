/**
 * glibc's malloc asks the kernel for transparent huge pages (2 MB) with GLIBC_TUNABLES
 * glibc.malloc.hugetlb=1. Where THP is `madvise` (the common default) that spares a real-size model
 * hundreds of thousands of page faults as its weights and activations first touch memory (measured by
 * `npm run bench -- --hf <folder> --rows sft,sft+hugetlb`). A process cannot set it for itself once
 * started, so gta sets it for the training processes it starts (sweep runs, ranks), unless the user
 * has set GLIBC_TUNABLES (to anything, empty included: their choice stands).
 */
export const HUGE_PAGES_TUNABLE = 'glibc.malloc.hugetlb=1';

/** `env` with the tunable where it has no GLIBC_TUNABLES of its own (Linux only: glibc reads it). */
export function withHugePages(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): NodeJS.ProcessEnv {
  return platform === 'linux' && env.GLIBC_TUNABLES === undefined ? { ...env, GLIBC_TUNABLES: HUGE_PAGES_TUNABLE } : env;
}
