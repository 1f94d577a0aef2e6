// How much memory an instance of a given type has, for the multi-model memory budget. berth runs
// every instance on one machine, so the type only sizes the budget; the numbers follow the EC2
// families SageMaker's ml.* types are built on.

const GIB = 2 ** 30;

/** Memory per vCPU by family letter(s): compute 2 GiB, general purpose 4, memory optimised 8. */
const GIB_PER_VCPU: Readonly<Record<string, number>> = {
  c: 2, m: 4, r: 8, x: 16, z: 8, g: 4, p: 8, inf: 2, trn: 4, t: 4,
};

/** Burstable types do not follow the per-vCPU rule. */
const EXACT_GIB: Readonly<Record<string, number>> = {
  'ml.t2.medium': 4, 'ml.t2.large': 8, 'ml.t2.xlarge': 16, 'ml.t2.2xlarge': 32,
  'ml.t3.medium': 4, 'ml.t3.large': 8, 'ml.t3.xlarge': 16, 'ml.t3.2xlarge': 32,
};

function vcpus(size: string): number | undefined {
  if (size === 'medium') return 1;
  if (size === 'large') return 2;
  if (size === 'xlarge') return 4;
  const n = /^(\d+)xlarge$/.exec(size)?.[1];
  return n === undefined ? undefined : 4 * Number(n);
}

/** Bytes of memory of an `ml.<family>.<size>` instance type; 8 GiB when the type is not recognised. */
export function instanceMemoryBytes(instanceType: string | undefined): number {
  if (!instanceType) return 8 * GIB;
  const exact = EXACT_GIB[instanceType];
  if (exact !== undefined) return exact * GIB;
  const m = /^ml\.([a-z]+)\d+[a-z]*\.(\w+)$/.exec(instanceType);
  const perVcpu = m ? GIB_PER_VCPU[m[1] as string] : undefined;
  const cpus = m ? vcpus(m[2] as string) : undefined;
  return perVcpu !== undefined && cpus !== undefined ? perVcpu * cpus * GIB : 8 * GIB;
}
