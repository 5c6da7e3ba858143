/**
 * SIGINT/SIGTERM ask the running loop to stop after the current step (it then writes a checkpoint and
 * marks the run interrupted); a second signal exits at once.
 */
export function stopOnSignals(onFirst: (signal: string) => void): { requested: () => boolean; dispose: () => void } {
  let requested = false;
  const handler = (signal: NodeJS.Signals) => {
    if (requested) process.exit(130);
    requested = true;
    onFirst(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    requested: () => requested,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
