/**
 * Runs a buffer's `flush` every `intervalMs` (the timer never keeps the process alive) and once
 * more on `stop`, so counts buffered in memory reach the store at a clean shutdown.
 */
export class PeriodicFlush {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly flush: () => Promise<void>, private readonly intervalMs: number) {}

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
