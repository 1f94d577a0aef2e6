// A container's resident memory, read from /proc: the process and every descendant, since a
// container may fork workers. Read before and after a model loads, the difference is what the
// model costs.
import { readFile } from 'node:fs/promises';

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

/** Resident bytes of `pid` and its descendants; 0 where /proc cannot tell (not Linux, or gone). */
export async function processTreeRss(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  let total = 0;
  const queue = [pid];
  for (let seen = 0; queue.length > 0 && seen < 1024; seen++) {
    const p = queue.shift() as number;
    total += await rssOf(p);
    queue.push(...(await childrenOf(p)));
  }
  return total;
}
