import type { ChildProcess } from 'node:child_process';

/** Children still running when the test process exits (a failed assertion skipped their stop) die with it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** Registers `child` until it exits; returns it. */
export function reap<T extends ChildProcess>(child: T): T {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}
