// Model data: fetched once into a content-addressed cache under <dataDir>/artifacts and unpacked there.
// The key is the URL with the object's identity (ETag and size), so a changed object is fetched again
// and an unchanged one is never fetched twice; concurrent requests for one key share one download.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileSource, HttpsSource, S3Source, SourceError } from './sources.js';
import type { Identity, S3Settings, Source } from './sources.js';
import { UnsafeArchive, unpackTarGz } from './unpack.js';
import type { UnpackLimits } from './unpack.js';

export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';

  /** `missing`: nothing exists at the URL, as opposed to a store that failed or refused. */
  constructor(message: string, readonly missing = false) {
    super(message);
  }
}

/** An object's identity without its bytes: the ETag (or size and time) that keys the cache. */
export type ArtifactIdentity = Identity;

/** A model.tar.gz unpacked into the cache. */
export interface UnpackedArtifact {
  readonly dir: string;
  /** Bytes of the unpacked files. */
  readonly bytes: number;
  /** Whether this call downloaded it (false: it was in the cache already, or another call fetched it). */
  readonly fetched: boolean;
}

/** What CreateModel said about one container's model data. */
export interface ModelSource {
  readonly url: string;
  /** `Gzip`: a model.tar.gz to unpack (ModelDataUrl always is); `None`: files as they are. */
  readonly compression: 'Gzip' | 'None';
  /** `S3Object`: one object; `S3Prefix`: every object under the prefix (uncompressed only). */
  readonly dataType: 'S3Object' | 'S3Prefix';
}

export interface FetchOptions {
  /** ModelDataDownloadTimeoutInSeconds, in milliseconds: download and unpack. */
  readonly timeoutMs: number;
  /** Container name for messages (`primary`, or a ContainerHostname). */
  readonly container: string;
}

export interface ArtifactOptions extends UnpackLimits {
  readonly dataDir: string;
  readonly s3: S3Settings;
  /** Extra CA certificates (PEM) for https:// model data. */
  readonly httpsCa?: string | undefined;
  /** Largest object berth downloads. */
  readonly maxDownloadBytes: number;
}

export class ArtifactCache {
  private readonly inFlight = new Map<string, Promise<string>>();
  /** Unpacked bytes of cache folders, measured once. */
  private readonly sizes = new Map<string, number>();
  private readonly root: string;
  private readonly sources: Readonly<Record<string, Source>>;
  /** Downloads started, for tests and metrics. */
  downloads = 0;

  constructor(private readonly o: ArtifactOptions) {
    this.root = join(o.dataDir, 'artifacts');
    this.sources = { 's3:': new S3Source(o.s3), 'https:': new HttpsSource(o.httpsCa), 'file:': new FileSource() };
    // A crash mid-download leaves partial folders; nothing else refers to them.
    if (existsSync(this.root)) {
      for (const name of readdirSync(this.root)) if (name.includes('.partial-')) rmSync(join(this.root, name), { recursive: true, force: true });
    }
  }

  /** Returns a folder holding the model data. */
  async materialize(source: ModelSource, options: FetchOptions): Promise<string> {
    const signal = AbortSignal.timeout(options.timeoutMs);
    const failed = (reason: string) =>
      new ArtifactError(`Failed to download model data for container "${options.container}" from URL: "${source.url}": ${reason}.`);
    let from: Source;
    try {
      from = this.source(source.url);
    } catch (err) {
      throw failed((err as Error).message);
    }
    if (source.compression === 'Gzip' && source.dataType === 'S3Prefix') {
      throw failed('CompressionType Gzip needs S3DataType S3Object; a prefix is read as uncompressed files');
    }
    try {
      if (source.url.startsWith('file:')) {
        // A local folder is used where it is; nothing to copy.
        const path = FileSource.path(source.url);
        const info = await stat(path).catch(() => undefined);
        if (info?.isDirectory()) return path;
      }
      if (source.dataType === 'S3Prefix') {
        if (!from.list) throw new SourceError('only s3:// URLs name a prefix');
        const listing = await from.list(source.url, signal);
        return await this.once(hash(source.url, listing.version, 'prefix'), async (dir) => {
          for (const obj of listing.objects) {
            const target = safeJoin(dir, obj.relativePath);
            await mkdir(dirname(target), { recursive: true });
            await this.save(await from.open(obj.url, signal), target, signal);
          }
        });
      }
      const identity = await from.identify(source.url, signal);
      if (identity.size !== undefined && identity.size > this.o.maxDownloadBytes) {
        throw new SourceError(`the object is ${identity.size} bytes, more than the ${this.o.maxDownloadBytes} berth downloads (setting artifactMaxDownloadBytes)`);
      }
      return await this.once(hash(source.url, identity.version, source.compression), async (dir) => {
        const stream = this.limited(await from.open(source.url, signal));
        if (source.compression === 'None') {
          await this.save(stream, join(dir, basename(new URL(source.url).pathname) || 'model'), signal);
          return;
        }
        const work = unpackTarGz(stream, dir, this.o);
        await Promise.race([work, abortPromise(signal)]);
      });
    } catch (err) {
      if (signal.aborted && !(err instanceof UnsafeArchive)) {
        throw failed(`the download did not finish within ${Math.round(options.timeoutMs / 1000)} seconds (ModelDataDownloadTimeoutInSeconds)`);
      }
      if (err instanceof UnsafeArchive) {
        throw new ArtifactError(`Model data for container "${options.container}" from URL "${source.url}" was refused: ${err.message}.`);
      }
      if (err instanceof SourceError || err instanceof ArtifactError) throw err instanceof SourceError ? failed(err.message) : err;
      throw failed((err as Error).message);
    }
  }

  /** The identity of one object (a HEAD request for s3:// and https://), for callers that revalidate. */
  async identify(url: string, timeoutMs: number): Promise<ArtifactIdentity> {
    const from = this.source(url);
    try {
      return await from.identify(url, AbortSignal.timeout(timeoutMs));
    } catch (err) {
      if (err instanceof SourceError) throw new ArtifactError(err.message, err.missing);
      throw new ArtifactError((err as Error).message);
    }
  }

  /**
   * A model.tar.gz whose identity the caller already knows (a multi-model endpoint checked it),
   * unpacked into the cache once however many callers ask; tells how big it is and who fetched it.
   */
  async unpackArchive(url: string, identity: ArtifactIdentity, timeoutMs: number): Promise<UnpackedArtifact> {
    const from = this.source(url);
    const signal = AbortSignal.timeout(timeoutMs);
    if (identity.size !== undefined && identity.size > this.o.maxDownloadBytes) {
      throw new ArtifactError(`the object is ${identity.size} bytes, more than the ${this.o.maxDownloadBytes} berth downloads (setting artifactMaxDownloadBytes)`);
    }
    let fetchedHere = false;
    try {
      const dir = await this.once(hash(url, identity.version, 'Gzip'), async (partial) => {
        fetchedHere = true;
        const work = unpackTarGz(this.limited(await from.open(url, signal)), partial, this.o);
        await Promise.race([work, abortPromise(signal)]);
      });
      let bytes = this.sizes.get(dir);
      if (bytes === undefined) {
        bytes = await folderBytes(dir);
        this.sizes.set(dir, bytes);
      }
      return { dir, bytes, fetched: fetchedHere };
    } catch (err) {
      if (signal.aborted && !(err instanceof UnsafeArchive)) throw new ArtifactError(`the download did not finish within ${Math.round(timeoutMs / 1000)} seconds`);
      if (err instanceof SourceError) throw new ArtifactError(err.message, err.missing);
      throw new ArtifactError((err as Error).message);
    }
  }

  /** Removes an unpacked artifact from the cache (a multi-model endpoint's disk budget). */
  async discard(dir: string): Promise<void> {
    if (dirname(resolve(dir)) !== resolve(this.root)) throw new Error(`${dir} is not a cache folder`);
    this.sizes.delete(dir);
    // Renamed first, so a concurrent fill of the same key never sees a half-deleted folder.
    const doomed = `${dir}.partial-discard-${randomBytes(4).toString('hex')}`;
    try {
      await rename(dir, doomed);
    } catch {
      return;
    }
    await rm(doomed, { recursive: true, force: true });
  }

  private source(url: string): Source {
    const scheme = /^([a-z0-9]+:)/.exec(url)?.[1] ?? '';
    const from = this.sources[scheme];
    if (!from) throw new ArtifactError('berth fetches model data from s3://, https:// and file:// URLs');
    return from;
  }

  /** Fills the cache folder for `key` once, however many callers ask at the same time. */
  private once(key: string, fill: (dir: string) => Promise<void>): Promise<string> {
    const target = join(this.root, key);
    if (existsSync(target)) return Promise.resolve(target);
    const running = this.inFlight.get(key);
    if (running) return running;
    const job = (async () => {
      this.downloads += 1;
      const partial = `${target}.partial-${randomBytes(4).toString('hex')}`;
      await mkdir(partial, { recursive: true });
      try {
        await fill(partial);
        await rename(partial, target);
        return target;
      } catch (err) {
        await rm(partial, { recursive: true, force: true });
        throw err;
      }
    })().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, job);
    return job;
  }

  private limited(stream: Readable): Readable {
    let seen = 0;
    const max = this.o.maxDownloadBytes;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        seen += chunk.length;
        if (seen > max) done(new SourceError(`the object is larger than the ${max} bytes berth downloads (setting artifactMaxDownloadBytes)`));
        else done(null, chunk);
      },
    });
    stream.on('error', (err) => counter.destroy(err));
    return stream.pipe(counter);
  }

  private async save(stream: Readable, target: string, signal: AbortSignal): Promise<void> {
    await pipeline(this.limited(stream), createWriteStream(target), { signal });
  }
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

function hash(url: string, version: string, kind: string): string {
  return createHash('sha256').update(`${url}\0${version}\0${kind}`).digest('hex').slice(0, 40);
}

/** An S3 key under a prefix becomes a path under the model folder, never outside it (AWS's rules). */
function safeJoin(root: string, rel: string): string {
  const parts = rel.split('/');
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..' || p.includes('\0') || Buffer.byteLength(p) > 255) {
      throw new UnsafeArchive(`the object key part "${rel}" is not a safe path (empty, ".", "..", NUL or longer than 255 bytes)`);
    }
  }
  const target = resolve(root, ...parts);
  if (!target.startsWith(resolve(root) + sep)) throw new UnsafeArchive(`the object key part "${rel}" resolves outside the model folder`);
  return target;
}

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(new Error('aborted'));
    signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  });
}
