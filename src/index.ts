// Public entry point of the naplus package.
export { NaplusError } from './errors.js';
export * from './uffd/index.js';
