export * from './errors.js';
export * from './gpu.js';
export * from './request.js';
export * from './result.js';
export * from './smpartition.js';
export * from './units.js';
