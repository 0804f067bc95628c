// The kernels of the application benchmark, by name.
import { jacobi, type JacobiParams } from './jacobi.js';
import { matmul, type MatmulParams } from './matmul.js';
import { sort, type SortParams } from './sort.js';
import type { Kernel } from './team.js';

export interface KernelParams {
  matmul: MatmulParams;
  jacobi: JacobiParams;
  sort: SortParams;
}

export type KernelName = keyof KernelParams;

export const KERNELS: { [K in KernelName]: Kernel<KernelParams[K]> } = { matmul, jacobi, sort };

/**
 * The kernel called `name`, typed for any kernel's params: TypeScript cannot tie a
 * union of names to the matching params, and a spec always carries a matching pair.
 */
export function kernelFor(name: KernelName): Kernel<KernelParams[KernelName]> {
  return KERNELS[name] as Kernel<KernelParams[KernelName]>;
}
