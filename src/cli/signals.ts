/** The running loop's stop (stopOnSignals), for a stop that is not a signal: the parent gone. */
let stopHere: ((why: string) => void) | undefined;

/**
 * SIGINT/SIGTERM ask the running loop to stop after the current step (it then writes a checkpoint and
 * marks the run interrupted); a second signal exits at once. A stop asked for otherwise (the parent
 * gone: stopWithParent) is the same stop, and the signal after it is still a first.
 */
export function stopOnSignals(onFirst: (why: string) => void): { requested: () => boolean; dispose: () => void } {
  let requested = false;
  let signalled = false;
  const stop = (why: string) => {
    if (requested) return;
    requested = true;
    onFirst(why);
  };
  const handler = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(130);
    signalled = true;
    stop(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  stopHere = stop;
  return {
    requested: () => requested,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      if (stopHere === stop) stopHere = undefined;
    },
  };
}

/**
 * A run that another gta process started over an IPC channel (a sweep's or a queue worker's child)
 * stops when that process goes away, as on a first SIGTERM: a killed worker must not leave its run
 * training on as an orphan while the queue gives the job to another worker. Ctrl-C in a terminal
 * signals the sweep and its runs together, and a run may see the sweep gone before its own SIGINT:
 * neither may count as the second signal that quits at once (the run would be left marked running,
 * its last steps lost).
 */
export function stopWithParent(): void {
  if (!process.channel) return;
  // the channel alone must not keep this process alive once the run is over
  process.channel.unref();
  // the sweep stopped (LocalExecutor.stop): the same stop
  process.on('message', (m: { stop?: boolean }) => {
    if (m?.stop) stopFromParent('the sweep was stopped');
  });
  process.once('disconnect', () => {
    // nobody reads this process's stderr any more: a write there must not end it before its checkpoint
    process.stderr.on('error', () => undefined);
    stopFromParent('the process that started this run exited');
  });
}

function stopFromParent(why: string): void {
  if (stopHere) stopHere(why);
  else process.kill(process.pid, 'SIGTERM');
}
