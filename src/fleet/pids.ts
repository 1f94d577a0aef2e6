// Whether a process still runs, for the files that name their owner by pid (the data dir's lock,
// the container port reservations).

/** Whether process `pid` exists. EPERM means it does, and belongs to another user. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
