// Safe unpacking of model.tar.gz. A model artifact is input from whoever uploaded it, so every entry is
// checked before anything is written: no absolute paths, no `..`, no links that point out of the
// model folder, no device files, and limits on file count and unpacked size against decompression
// bombs. Any violation refuses the whole artifact with the entry's name, rather than skipping it.
import { createWriteStream } from 'node:fs';
import { link, mkdir, realpath, symlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Parser } from 'tar';
import type { ReadEntry } from 'tar';

export interface UnpackLimits {
  /** Sum of the sizes of all files in the archive. */
  readonly maxUnpackedBytes: number;
  /** Number of entries of any kind. */
  readonly maxEntries: number;
}

export class UnsafeArchive extends Error {
  override readonly name = 'UnsafeArchive';
}

const NOT_GZIP = 'it is not gzip-compressed (the first bytes are not 1f 8b); ModelDataUrl must name a model.tar.gz';

/** Passes the stream through once its first two bytes are gzip's magic number, 1f 8b. */
function gzipGuard(): Transform {
  let head: Buffer | undefined = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (!head) return done(null, chunk);
      head = Buffer.concat([head, chunk]);
      if (head.length < 2) return done();
      const ok = head[0] === 0x1f && head[1] === 0x8b;
      const first = head;
      head = undefined;
      if (ok) done(null, first);
      else done(new UnsafeArchive(NOT_GZIP));
    },
    flush(done) {
      done(head ? new UnsafeArchive(NOT_GZIP) : null);
    },
  });
}

/** The entry's path relative to the model folder, or a reason it may not be written. */
function safeRelative(root: string, entryPath: string): string {
  if (entryPath.includes('\0')) throw new UnsafeArchive(`entry "${entryPath.replace(/\0/g, '\\0')}" has a NUL byte in its name`);
  if (isAbsolute(entryPath)) throw new UnsafeArchive(`entry "${entryPath}" has an absolute path`);
  const parts = entryPath.split(/[\\/]+/);
  if (parts.includes('..')) throw new UnsafeArchive(`entry "${entryPath}" climbs out of the model folder with ".."`);
  const rel = normalize(entryPath);
  const target = resolve(root, rel);
  if (target !== root && !target.startsWith(root + sep)) throw new UnsafeArchive(`entry "${entryPath}" resolves outside the model folder`);
  return relative(root, target);
}

/** Where a link entry points, which must stay inside the model folder. */
function safeLinkTarget(root: string, entryRel: string, linkpath: string, kind: 'symbolic' | 'hard'): string {
  const base = kind === 'symbolic' ? dirname(join(root, entryRel)) : root;
  const target = isAbsolute(linkpath) ? linkpath : resolve(base, linkpath);
  if (target !== root && !target.startsWith(root + sep)) {
    throw new UnsafeArchive(`entry "${entryRel}" is a ${kind} link to "${linkpath}", outside the model folder`);
  }
  return target;
}

/**
 * Unpacks a gzip-compressed tar from `source` into `root` (an empty folder). Rejects with
 * UnsafeArchive naming the first offending entry, or with a message saying the data is not gzip/tar.
 */
export async function unpackTarGz(source: Readable, root: string, limits: UnpackLimits): Promise<{ files: number; bytes: number }> {
  const stream = source;
  const rootAbs = resolve(root);
  const realRoot = await realpath(rootAbs);
  let entries = 0;
  let bytes = 0;
  // Entries are written one after another: each write checks the folder it lands in on disk, after
  // every earlier link exists, so a chain of links that only escapes physically is caught too.
  let chain: Promise<void> = Promise.resolve();
  let failed = false;
  let fail: (err: Error) => void = () => undefined;
  const then = (entry: ReadEntry, step: () => Promise<void>) => {
    chain = chain.then(async () => {
      if (failed) {
        entry.resume();
        return;
      }
      try {
        await step();
      } catch (err) {
        entry.resume();
        fail(err as Error);
      }
    });
  };
  const inside = async (dir: string, entryPath: string) => {
    const real = await realpath(dir);
    if (real !== realRoot && !real.startsWith(realRoot + sep)) {
      throw new UnsafeArchive(`entry "${entryPath}" would be written through a link outside the model folder`);
    }
  };
  const parentReady = async (target: string, entryPath: string) => {
    await mkdir(dirname(target), { recursive: true });
    await inside(dirname(target), entryPath);
  };

  return new Promise((resolvePromise, reject) => {
    const parser = new Parser({ strict: true });
    fail = (err: Error) => {
      if (failed) return;
      failed = true;
      stream.destroy();
      parser.abort(err);
      reject(err);
    };

    parser.on('entry', (entry: ReadEntry) => {
      if (failed) {
        entry.resume();
        return;
      }
      try {
        entries += 1;
        if (entries > limits.maxEntries) throw new UnsafeArchive(`it holds more than ${limits.maxEntries} entries`);
        const rel = safeRelative(rootAbs, entry.path);
        const target = join(rootAbs, rel);
        switch (entry.type) {
          case 'Directory':
            if (rel === '') {
              // "./": the model folder itself.
              entry.resume();
              return;
            }
            then(entry, async () => {
              await parentReady(target, entry.path);
              await mkdir(target, { recursive: true });
              await inside(target, entry.path);
            });
            entry.resume();
            return;
          case 'File':
          case 'OldFile':
          case 'ContiguousFile': {
            bytes += entry.size;
            if (bytes > limits.maxUnpackedBytes) throw new UnsafeArchive(`it unpacks to more than ${limits.maxUnpackedBytes} bytes`);
            then(entry, async () => {
              await parentReady(target, entry.path);
              await writeEntry(entry, target);
            });
            return;
          }
          case 'SymbolicLink': {
            const linkpath = entry.linkpath ?? '';
            safeLinkTarget(rootAbs, rel, linkpath, 'symbolic');
            then(entry, async () => {
              await parentReady(target, entry.path);
              await symlink(linkpath, target);
            });
            entry.resume();
            return;
          }
          case 'Link': {
            const source = safeLinkTarget(rootAbs, rel, entry.linkpath ?? '', 'hard');
            then(entry, async () => {
              await parentReady(target, entry.path);
              await inside(dirname(source), entry.path);
              await link(source, target);
            });
            entry.resume();
            return;
          }
          default:
            throw new UnsafeArchive(`entry "${entry.path}" is a ${entry.type}, which a model folder may not hold`);
        }
      } catch (err) {
        entry.resume();
        fail(err as Error);
      }
    });
    parser.on('error', (err: Error) => fail(new UnsafeArchive(`it is not a valid tar archive (${err.message})`)));
    parser.on('warn', (_code: string, message: string) => fail(new UnsafeArchive(`it is not a valid tar archive (${message})`)));
    parser.on('end', () => {
      if (failed) return;
      void chain.then(() => {
        if (!failed) resolvePromise({ files: entries, bytes });
      });
    });
    const guard = gzipGuard();
    const gunzip = createGunzip();
    guard.on('error', (err) => fail(err));
    gunzip.on('error', (err) => fail(new UnsafeArchive(`its gzip stream is corrupt (${err.message})`)));
    stream.on('error', (err) => fail(err));
    stream.pipe(guard).pipe(gunzip).pipe(parser);
  });
}

async function writeEntry(entry: ReadEntry, target: string): Promise<void> {
  await new Promise<void>((resolveWrite, reject) => {
    // Owner read/write at least, never setuid/setgid: the archive's owner bits are not trusted.
    const mode = ((entry.mode ?? 0o644) & 0o777) | 0o600;
    const out = createWriteStream(target, { mode });
    out.on('error', reject);
    out.on('finish', () => resolveWrite());
    entry.pipe(out);
  });
}
