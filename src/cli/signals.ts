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

/**
 * A run that another gta process started over an IPC channel (a sweep's or a queue worker's child)
 * stops when that process goes away, as on SIGTERM: a killed worker must not leave its run training on
 * as an orphan while the queue gives the job to another worker.
 */
export function stopWithParent(): void {
  if (!process.channel) return;
  // the channel alone must not keep this process alive once the run is over
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
