// The native invocation front (native/front.c, built into build/Release/berth_front.node at install):
// what JavaScript does for it. It keeps the front's copy of the routes (every endpoint whose variants
// it can serve: single-container, not multi-model, serving; with only the instances ready for
// traffic), answers the invocations it asks about through the same answerInvocation as the other
// paths, takes over the connections it hands on, and adds its calls to the endpoint metrics.
//
// Why a native front: see front.c and docs/architecture.md ("The invocation path").
import { EventEmitter } from 'node:events';
import { closeSync, existsSync } from 'node:fs';
import type { IncomingHttpHeaders, Server as HttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { DeliveredOutcome, EndpointRoute, Router } from '../router/index.js';
import type { Answer } from './envelope.js';
import { renderAnswer } from './front.js';

/** The addon's functions (front.c, "The JavaScript side"). */
interface Addon {
  start(o: StartOptions): [NativeHandle, number];
  reply(ticket: unknown, answer: Buffer | undefined): void;
  publish(front: NativeHandle, endpointName: string, route: NativeRoute | null): void;
  inflight(instanceId: string): number;
  metrics(): number[];
  close(front: NativeHandle): void;
  connections(front: NativeHandle): number;
}

type NativeHandle = { readonly brand: 'berth-native-front' };

interface StartOptions {
  readonly host: string;
  readonly port: number;
  readonly keepAliveMs: number;
  readonly maxPayloadBytes: number;
  readonly invocationTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly headers: readonly string[];
  readonly handOff: (fd: number, bytes: Buffer | undefined) => void;
  readonly delegate: (ticket: unknown, headers: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string, outcome: NativeOutcome | undefined) => void;
}

interface NativeRoute {
  readonly variants: readonly { name: string; weight: number; slot: number; instances: { id: string; host: string; port: number }[] }[];
}

/** What front.c passes with a delegated call it made itself (see DeliveredOutcome). */
interface NativeOutcome {
  readonly kind: 'answer' | 'timeout' | 'closed' | 'too-large' | 'malformed';
  readonly variant: string;
  readonly instance: string;
  readonly modelMs: number;
  readonly status?: number;
  readonly detail?: string;
  readonly body?: Buffer;
}

const ADDON_PATH = fileURLToPath(new URL('../../../build/Release/berth_front.node', import.meta.url));
let addon: Addon | null | undefined;

/** The built addon, or undefined when it was not built (no compiler at install: the Node front serves). */
export function nativeFrontAddon(): Addon | undefined {
  if (addon === undefined) addon = existsSync(ADDON_PATH) ? (createRequire(import.meta.url)(ADDON_PATH) as Addon) : null;
  return addon ?? undefined;
}

const SERVING = new Set(['InService', 'Updating', 'RollingBack']);
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

export interface NativeFrontOptions {
  readonly addon: Addon;
  readonly http: HttpServer;
  readonly router: Router;
  readonly keepAliveMs: number;
  readonly maxPayloadBytes: number;
  readonly invocationTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly headers: readonly string[];
  readonly answer: (headers: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string) => Promise<Answer>;
  /** The answer to a call front.c delivered that did not end in a 2xx answer. */
  readonly delivered: (headers: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string, variant: string, instance: string, outcome: DeliveredOutcome) => Answer;
}

/** Whether `host` is one the native front can listen on (IPv4 addresses; others use the Node front). */
export function nativeFrontServes(host: string): boolean {
  return IPV4.test(host);
}

/** Metric slots: one per endpoint and variant the front has served, process-wide like the addon's. */
const slots = new Map<string, number>();
const slotNames: [endpointName: string, variantName: string][] = [];

function slotFor(endpointName: string, variantName: string): number {
  const key = `${endpointName}\u0000${variantName}`;
  let slot = slots.get(key);
  if (slot === undefined) {
    slot = slotNames.length;
    slots.set(key, slot);
    slotNames.push([endpointName, variantName]);
  }
  return slot;
}

/**
 * The listening server when the addon is built: the part of net.Server that berth uses (listen,
 * address, close, 'error').
 */
export class NativeFront extends EventEmitter {
  readonly front = 'native' as const;
  private handle: NativeHandle | undefined;
  private port = 0;
  private host = '';
  /** Connections handed to the `http` server: close waits for them as net.Server waits for its own. */
  private readonly handedOff = new Set<Socket>();
  private readonly countedInstances = new WeakSet<object>();
  private flusher: NodeJS.Timeout | undefined;

  constructor(private readonly o: NativeFrontOptions) {
    super();
    o.router.onChange((name) => this.publish(name));
  }

  listen(port: number, host: string, callback: () => void): this {
    try {
      [this.handle, this.port] = this.o.addon.start({
        host,
        port,
        keepAliveMs: this.o.keepAliveMs,
        maxPayloadBytes: this.o.maxPayloadBytes,
        invocationTimeoutMs: this.o.invocationTimeoutMs,
        maxResponseBytes: this.o.maxResponseBytes,
        headers: this.o.headers,
        handOff: (fd, bytes) => this.takeOver(fd, bytes),
        delegate: (ticket, headers, endpointName, body, requestId, outcome) => this.ask(ticket, headers, endpointName, body, requestId, outcome),
      });
    } catch (err) {
      process.nextTick(() => this.emit('error', err));
      return this;
    }
    this.host = host;
    // Routes published before listen (endpoints restored at start) are copied now.
    for (const name of this.o.router.routeNames()) this.publish(name);
    // The `http` server tracks its connections (headersTimeout, closeIdleConnections) from 'listening'.
    this.o.http.emit('listening');
    this.flusher = setInterval(() => this.flushMetrics(), 1_000).unref();
    process.nextTick(callback);
    return this;
  }

  address(): AddressInfo {
    return { address: this.host, family: 'IPv4', port: this.port };
  }

  /** Stops accepting; idle connections end now, busy ones after their answer; `callback` when all have. */
  close(callback?: (err?: Error) => void): this {
    const handle = this.handle;
    if (!handle) {
      if (callback) process.nextTick(callback);
      return this;
    }
    this.handle = undefined;
    this.o.addon.close(handle);
    this.o.http.closeIdleConnections();
    clearInterval(this.flusher);
    this.flushMetrics();
    const wait = (): void => {
      if (this.o.addon.connections(handle) > 0 || this.handedOff.size > 0) {
        this.o.http.closeIdleConnections();
        setTimeout(wait, 10);
        return;
      }
      callback?.();
    };
    wait();
    return this;
  }

  /** Adds the native front's successful calls since the last flush to the endpoint metrics. */
  flushMetrics(): void {
    const m = this.o.addon.metrics();
    for (let i = 0; i + 5 < m.length; i += 6) {
      const names = slotNames[m[i] as number];
      if (!names) continue;
      this.o.router.recordDelivered(names[0], names[1], m[i + 1] as number, m[i + 2] as number, m[i + 3] as number, m[i + 4] as number, m[i + 5] as number);
    }
  }

  /** Copies the router's route of `endpointName` to the addon (null: the router answers it). */
  private publish(endpointName: string): void {
    if (!this.handle) return;
    this.o.addon.publish(this.handle, endpointName, this.nativeRoute(endpointName, this.o.router.route(endpointName)));
  }

  private nativeRoute(endpointName: string, route: EndpointRoute | undefined): NativeRoute | null {
    if (!route || !SERVING.has(route.status)) return null;
    if (route.variants.some((v) => v.mode !== 'single' || v.multiModel !== undefined)) return null;
    return {
      variants: route.variants.map((v) => ({
        name: v.name,
        weight: v.weight,
        slot: slotFor(endpointName, v.name),
        instances: v.instances.flatMap((i) => {
          const container = i.containers[0];
          if (i.state !== 'ready' || i.containers.length !== 1 || !container) return [];
          if (!this.countedInstances.has(i)) {
            this.countedInstances.add(i);
            const addon = this.o.addon;
            i.countInFlight(() => addon.inflight(i.id));
          }
          return [{ id: i.id, host: container.client.host, port: container.client.port }];
        }),
      })),
    };
  }

  /** A connection front.c hands on: from here on the `http` server's, starting with `bytes`. */
  private takeOver(fd: number, bytes: Buffer | undefined): void {
    let s: Socket;
    try {
      s = new Socket({ fd, readable: true, writable: true });
    } catch {
      closeSync(fd);
      return;
    }
    this.handedOff.add(s);
    s.once('close', () => this.handedOff.delete(s));
    s.pause();
    this.o.http.emit('connection', s);
    if (bytes !== undefined) s.unshift(bytes);
    process.nextTick(() => s.resume());
  }

  private ask(ticket: unknown, headers: IncomingHttpHeaders, endpointName: string, body: Buffer, requestId: string, outcome: NativeOutcome | undefined): void {
    const reply = (answer: Answer): void => this.o.addon.reply(ticket, renderAnswer(answer, '\r\n'));
    if (outcome === undefined) {
      // Exactly one reply per ticket, whatever fails: the connection's thread waits for it.
      this.o.answer(headers, endpointName, body, requestId).then(reply).catch(() => this.o.addon.reply(ticket, undefined));
      return;
    }
    const delivered: DeliveredOutcome = outcome.kind === 'answer'
      ? { kind: 'answer', status: outcome.status ?? 0, body: outcome.body ?? Buffer.alloc(0) }
      : { kind: outcome.kind, detail: outcome.detail ?? '', status: outcome.status };
    try {
      reply(this.o.delivered(headers, endpointName, body, requestId, outcome.variant, outcome.instance, delivered));
    } catch {
      this.o.addon.reply(ticket, undefined);
    }
  }
}
