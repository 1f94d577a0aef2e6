// Model data: fetching from S3, https and disk, safe unpacking, and the shared on-disk cache.
export { ArtifactCache, ArtifactError } from './artifacts.js';
export type { ArtifactIdentity, ArtifactOptions, FetchOptions, ModelSource, UnpackedArtifact } from './artifacts.js';
export type { S3Settings } from './sources.js';
