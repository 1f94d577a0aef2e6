// Model data: fetched once into a content-addressed cache under <dataDir>/artifacts and unpacked there;
// every instance of every endpoint that uses the same artifact shares the folder.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { x as untar } from 'tar';

export class ArtifactError extends Error {
  override readonly name = 'ArtifactError';
}

export interface FetchOptions {
  /** ModelDataDownloadTimeoutInSeconds, in milliseconds. */
  readonly timeoutMs: number;
}

export class ArtifactCache {
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(private readonly dataDir: string) {}

  /** Returns a folder holding the model data of `url` (a `.tar.gz` is unpacked, a folder used as is). */
  async materialize(url: string, options: FetchOptions): Promise<string> {
    if (!url.startsWith('file://')) {
      throw new ArtifactError(`Failed to download model data from URL "${url}": this berth reads model data from file:// URLs; s3:// and https:// are not available in this version.`);
    }
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch {
      throw new ArtifactError(`Model data URL "${url}" is not a valid file URL; use file:///absolute/path.`);
    }
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new ArtifactError(`Failed to find model data at "${url}": there is no file or folder at ${path}.`);
    if (info.isDirectory()) return path;
    const key = createHash('sha256').update(`${path}\0${info.size}\0${info.mtimeMs}`).digest('hex').slice(0, 32);
    const running = this.inFlight.get(key);
    if (running) return running;
    const job = this.unpack(url, path, key, options).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, job);
    return job;
  }

  private async unpack(url: string, file: string, key: string, options: FetchOptions): Promise<string> {
    const target = join(this.dataDir, 'artifacts', key);
    if (existsSync(target)) return target;
    const partial = `${target}.partial-${process.pid}-${Date.now()}`;
    await mkdir(partial, { recursive: true });
    try {
      const timeout = AbortSignal.timeout(options.timeoutMs);
      const extraction = untar({ file, cwd: partial, strict: true, preservePaths: false });
      await Promise.race([
        extraction,
        new Promise((_, reject) => timeout.addEventListener('abort', () => reject(new Error(`unpacking took longer than ${Math.round(options.timeoutMs / 1000)} seconds`)))),
      ]);
      await rename(partial, target);
      return target;
    } catch (err) {
      await rm(partial, { recursive: true, force: true });
      throw new ArtifactError(`Failed to unpack model data from URL "${url}": ${(err as Error).message}. ModelDataUrl must name a gzip-compressed tar (model.tar.gz) or a folder.`);
    }
  }
}
