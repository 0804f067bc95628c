// Public entry point of the naplus package: `import { attach } from 'naplus'`. Every type
// the API's signatures mention is exported here too, so that users can name it.
export { NaplusError, type NaplusErrorCode } from './errors.js';
export { attach, Region, Lock, type RegionStats } from './api/region.js';
export { Block, type Home, type HeapStats, type MallocOptions } from './api/heap.js';
export type { AttachOptions, AttachedRegion } from './client/attach.js';
export type { Welcome, NodeToApp } from './attach-protocol.js';
export type { RegionFigures } from './stats.js';
export type { FaultSource } from './trace/fault-event.js';
export type { Placement } from './config.js';
