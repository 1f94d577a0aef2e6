// How long tasks on this machine have waited for a CPU: Linux's pressure stall information (PSI).
// SpinWait reads it to stop polling as soon as its polling keeps someone else off a CPU.
import { closeSync, openSync, readSync } from 'node:fs';

const TOTAL = Buffer.from('total=');

/**
 * The `some` line of `/proc/pressure/cpu`: the total time, in µs, during which at least one task on
 * the machine was ready to run and waited for a CPU. The kernel computes it when the file is read,
 * up to the moment of the read, so two reads a few dozen microseconds apart show whether anyone
 * waited in between. Reading it costs one `pread` and allocates nothing (the polling loop must not
 * make garbage; see SpinWait.turn).
 */
export class CpuPressure {
  private readonly buf = Buffer.alloc(256);

  private constructor(private readonly fd: number) {}

  /** undefined where the file is missing or unreadable: not Linux, or a kernel without PSI. */
  static open(path = '/proc/pressure/cpu'): CpuPressure | undefined {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return undefined;
    }
    const pressure = new CpuPressure(fd);
    if (pressure.stalledMicros() < 0) {
      closeSync(fd);
      return undefined;
    }
    return pressure;
  }

  /** The `some` total in µs; -1 if the file could not be read or parsed. */
  stalledMicros(): number {
    let n: number;
    try {
      n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    } catch {
      return -1;
    }
    // "some avg10=0.00 avg60=0.00 avg300=0.00 total=123456\nfull …": the first total is `some`'s.
    const at = this.buf.indexOf(TOTAL);
    if (at < 0 || at >= n) return -1;
    let total = 0;
    let i = at + TOTAL.length;
    for (; i < n; i++) {
      const c = this.buf[i] as number;
      if (c < 48 || c > 57) break;
      total = total * 10 + (c - 48);
    }
    return i > at + TOTAL.length ? total : -1;
  }
}
