// Public entry point of the naplus package: `import { attach } from 'naplus'`.
export { NaplusError } from './errors.js';
export { attach, Region, Lock, type RegionStats } from './api/region.js';
export { Block, type Home, type HeapStats, type MallocOptions } from './api/heap.js';
export type { AttachOptions } from './client/attach.js';
