// Where model data comes from: S3 (or any S3-compatible store), https, or the local disk. Each source
// can tell an artifact's identity without downloading it (ETag and size), which keys the cache.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Readable as ReadableStream } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'undici';

export class SourceError extends Error {
  override readonly name = 'SourceError';

  /** `missing`: nothing exists at the URL (as opposed to a store that could not be asked). */
  constructor(message: string, readonly missing = false) {
    super(message);
  }
}

export interface Identity {
  /** Stable for the same bytes: an ETag, or size and modification time. */
  readonly version: string;
  readonly size?: number | undefined;
}

export interface ObjectRef {
  /** Path relative to the prefix (S3Prefix), or the object's file name. */
  readonly relativePath: string;
  readonly url: string;
}

export interface Source {
  identify(url: string, signal: AbortSignal): Promise<Identity>;
  open(url: string, signal: AbortSignal): Promise<Readable>;
  /** Objects under a prefix (ModelDataSource S3Prefix). */
  list?(url: string, signal: AbortSignal): Promise<{ objects: ObjectRef[]; version: string }>;
}

export interface S3Settings {
  /** An S3-compatible endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), else AWS's own. */
  readonly endpoint?: string | undefined;
  readonly forcePathStyle: boolean;
  readonly region: string;
}

function splitS3(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new SourceError('it is not an s3://bucket/key URL');
  return { bucket: m[1] as string, key: m[2] as string };
}

function s3Reason(err: unknown, bucket: string): string {
  const e = err as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.name ?? e.Code;
  const status = e.$metadata?.httpStatusCode;
  if (code === 'NoSuchKey' || code === 'NotFound' || status === 404) return 'no object exists at that URL';
  if (code === 'NoSuchBucket') return `the bucket "${bucket}" does not exist`;
  if (code === 'AccessDenied' || code === 'Forbidden' || status === 403) return 'access was denied; check the credentials berth runs with';
  return e.message ?? String(err);
}

function s3Missing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

export class S3Source implements Source {
  private client: S3Client | undefined;

  constructor(private readonly settings: S3Settings) {}

  private s3(): S3Client {
    // Credentials come from the SDK's default chain (environment, profile, instance role).
    this.client ??= new S3Client({
      region: this.settings.region,
      ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
      forcePathStyle: this.settings.forcePathStyle,
    });
    return this.client;
  }

  async identify(url: string, signal: AbortSignal): Promise<Identity> {
    const { bucket, key } = splitS3(url);
    try {
      const head = await this.s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      return { version: head.ETag ?? `${head.ContentLength}-${head.LastModified?.toISOString()}`, size: head.ContentLength };
    } catch (err) {
      throw new SourceError(s3Reason(err, bucket), s3Missing(err));
    }
  }

  async open(url: string, signal: AbortSignal): Promise<Readable> {
    const { bucket, key } = splitS3(url);
    try {
      const out = await this.s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
      return out.Body as Readable;
    } catch (err) {
      throw new SourceError(s3Reason(err, bucket));
    }
  }

  async list(url: string, signal: AbortSignal): Promise<{ objects: ObjectRef[]; version: string }> {
    const { bucket, key: prefix } = splitS3(url);
    const objects: ObjectRef[] = [];
    const versions: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.s3().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal });
        for (const o of page.Contents ?? []) {
          if (!o.Key || o.Key.endsWith('/')) continue;
          objects.push({ relativePath: o.Key.slice(prefix.length), url: `s3://${bucket}/${o.Key}` });
          versions.push(`${o.Key}\0${o.ETag ?? ''}\0${o.Size ?? ''}`);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw new SourceError(s3Reason(err, bucket));
    }
    if (objects.length === 0) throw new SourceError('no objects exist under that prefix');
    return { objects, version: versions.join('\n') };
  }
}

export class HttpsSource implements Source {
  private readonly dispatcher: Agent | undefined;

  /** `ca`: extra PEM certificates to trust (a server with an internal CA). */
  constructor(ca?: string) {
    this.dispatcher = ca ? new Agent({ connect: { ca } }) : undefined;
  }

  private async request(url: string, method: 'HEAD' | 'GET', signal: AbortSignal): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(url, { method, signal, ...(this.dispatcher ? { dispatcher: this.dispatcher } : {}) } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      throw new SourceError(cause ?? (err as Error).message);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new SourceError(`the server answered ${res.status} ${res.statusText}`, res.status === 404);
    }
    return res;
  }

  async identify(url: string, signal: AbortSignal): Promise<Identity> {
    const res = await this.request(url, 'HEAD', signal);
    const size = Number(res.headers.get('content-length') ?? NaN);
    // Without a validator the URL alone keys the cache.
    const version = res.headers.get('etag') ?? res.headers.get('last-modified') ?? '';
    return { version, size: Number.isFinite(size) ? size : undefined };
  }

  async open(url: string, signal: AbortSignal): Promise<Readable> {
    const res = await this.request(url, 'GET', signal);
    if (!res.body) throw new SourceError('the server sent no body');
    return ReadableStream.fromWeb(res.body as WebReadableStream<Uint8Array>);
  }
}

export class FileSource implements Source {
  static path(url: string): string {
    try {
      return fileURLToPath(url);
    } catch {
      throw new SourceError('it is not a valid file URL; use file:///absolute/path');
    }
  }

  async identify(url: string): Promise<Identity> {
    const path = FileSource.path(url);
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new SourceError(`there is no file or folder at ${path}`, true);
    return { version: `${info.size}-${info.mtimeMs}-${info.ino}`, size: info.size };
  }

  open(url: string): Promise<Readable> {
    return Promise.resolve(createReadStream(FileSource.path(url)));
  }
}
