// Model data: fetching, safe unpacking and the shared on-disk cache.
export { ArtifactCache, ArtifactError } from './artifacts.js';
export type { FetchOptions } from './artifacts.js';
