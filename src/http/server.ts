// The one HTTP port: bounded (header bytes, header and request deadlines,
// connection cap, requests per socket), routed, and crash-proof: a handler's
// error becomes a coded 4xx/5xx, a malformed request a 400 and a closed socket.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { CanopyError } from '../errors'
import {
  HTTP_HEADER_BYTES_MAX, HTTP_KEEPALIVE_MS, HTTP_REQUESTS_PER_SOCKET_MAX, HTTP_TIMEOUT_CHECK_MS
} from '../limits'
import type { Logger } from '../log'
import { sendError } from './respond'
import { Router, type Handler, type RequestContext, type RouteOptions } from './router'

export interface HttpServerOptions {
  host: string
  port: number
  connectionsMax: number
  headersTimeoutMs: number
  requestTimeoutMs: number
  /** May this source use routes under the server's policy? */
  allow: (remote: string) => boolean
  log: Logger
}

export interface HttpCounters {
  requests: number
  errors: number
  clientErrors: number
  forbidden: number
}

/** Absolute-form requests (forward proxy) and CONNECT tunnels go to these when set. */
export type ProxyHandler = (ctx: RequestContext) => void | Promise<void>
export type ConnectHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, remote: string) => void

/** This server runs on real sockets only, so its few safety timers are real ones too. */
const CLIENT_ERROR_LINGER_MS = 1_000

const unmap = (addr: string | undefined): string => (addr ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')

export class HttpServer {
  readonly counters: HttpCounters = { requests: 0, errors: 0, clientErrors: 0, forbidden: 0 }
  readonly #router = new Router()
  readonly #server: Server
  #proxy: ProxyHandler | null = null
  #connect: ConnectHandler | null = null
  #closing = false
  readonly #inFlight = new Map<IncomingMessage, { res: ServerResponse, startMs: number }>()
  #sweep: NodeJS.Timeout | null = null

  constructor (private readonly options: HttpServerOptions) {
    this.#server = createServer({
      maxHeaderSize: HTTP_HEADER_BYTES_MAX,
      headersTimeout: options.headersTimeoutMs,
      // Node's requestTimeout would cut a live ingest's endless body; handle() keeps the deadline per route instead.
      requestTimeout: 0,
      keepAliveTimeout: HTTP_KEEPALIVE_MS,
      connectionsCheckingInterval: HTTP_TIMEOUT_CHECK_MS,
      noDelay: true
    }, (req, res) => { this.#handle(req, res) })
    this.#server.maxConnections = options.connectionsMax
    this.#server.maxRequestsPerSocket = HTTP_REQUESTS_PER_SOCKET_MAX
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => { this.#onClientError(err, socket) })
    this.#server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => { this.#onConnect(req, socket, head) })
  }

  route (method: string, pattern: string, handler: Handler, options?: RouteOptions): void {
    this.#router.add(method, pattern, handler, options)
  }

  setProxy (handler: ProxyHandler | null): void { this.#proxy = handler }
  setConnect (handler: ConnectHandler | null): void { this.#connect = handler }

  listen (): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.#server.off('listening', onListening)
        reject(err.code === 'EADDRINUSE'
          ? new CanopyError('ADDRESS_IN_USE', `${this.options.host}:${this.options.port} is already in use; pick another with --http HOST:PORT`)
          : CanopyError.from(err, 'FILE_IO', `cannot listen on ${this.options.host}:${this.options.port}`))
      }
      const onListening = (): void => {
        this.#server.off('error', onError)
        this.#server.on('error', (err) => { this.options.log.error('http server error', { err }) })
        resolve(this.#server.address() as AddressInfo)
      }
      this.#server.once('error', onError)
      this.#server.once('listening', onListening)
      this.#server.listen(this.options.port, this.options.host)
    })
  }

  address (): AddressInfo | null {
    const a = this.#server.address()
    return a !== null && typeof a === 'object' ? a : null
  }

  get connections (): Promise<number> {
    return new Promise((resolve) => { this.#server.getConnections((_e, n) => { resolve(n ?? 0) }) })
  }

  /** Stop accepting, let in-flight requests finish until deadline, then cut what is left. */
  async close (deadlineMs: number): Promise<void> {
    if (this.#closing) return
    this.#closing = true
    const closed = new Promise<void>((resolve) => { this.#server.close(() => { resolve() }) })
    this.#server.closeIdleConnections()
    const timer = setTimeout(() => { this.#server.closeAllConnections() }, Math.max(0, deadlineMs))
    timer.unref()
    await closed
    clearTimeout(timer)
    if (this.#sweep !== null) clearInterval(this.#sweep)
    this.#inFlight.clear()
  }

  #handle (req: IncomingMessage, res: ServerResponse): void {
    this.counters.requests++
    this.#track(req, res)
    const remote = unmap(req.socket.remoteAddress)
    if (this.#closing) res.setHeader('connection', 'close')
    const rawUrl = req.url ?? '/'
    let url: URL
    try {
      url = new URL(rawUrl, 'http://canopy.invalid')
    } catch {
      this.#reply(res, new CanopyError('HTTP_BAD_REQUEST', 'unparseable request target'))
      return
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rawUrl)) { // absolute form: a forward-proxy request
      if (this.#proxy === null) {
        this.#reply(res, new CanopyError('HTTP_FORBIDDEN', 'this agent is not a forward proxy'))
        return
      }
      if (!this.options.allow(remote)) {
        this.counters.forbidden++
        this.#reply(res, new CanopyError('HTTP_FORBIDDEN', 'the proxy serves LAN clients only'))
        return
      }
      this.#run(this.#proxy, { req, res, url, remote, params: {} })
      return
    }
    const match = this.#router.match(req.method ?? 'GET', url.pathname)
    if (match === null) {
      this.#reply(res, new CanopyError('HTTP_NOT_FOUND', `no resource ${url.pathname}`))
      return
    }
    if (match === 'method') {
      this.#reply(res, new CanopyError('HTTP_METHOD_NOT_ALLOWED', `${req.method ?? ''} not allowed on ${url.pathname}`))
      return
    }
    if (match.route.options.longBody === true) this.#inFlight.delete(req)
    if (match.route.options.access !== 'any' && !this.options.allow(remote)) {
      this.counters.forbidden++
      this.#reply(res, new CanopyError('HTTP_FORBIDDEN', 'this port serves loopback and LAN clients only'))
      return
    }
    this.#run(match.route.handler, { req, res, url, remote, params: match.params })
  }

  /** Requests still arriving, by when they started: the whole request must arrive within requestTimeoutMs. */
  #track (req: IncomingMessage, res: ServerResponse): void {
    this.#inFlight.set(req, { res, startMs: performance.now() })
    if (this.#sweep === null) this.#sweep = setInterval(() => { this.#expire() }, HTTP_TIMEOUT_CHECK_MS).unref()
    const done = (): void => { this.#inFlight.delete(req) }
    req.once('end', done)
    res.once('close', done)
  }

  /** 408 and a closed socket for requests whose body is still arriving past the deadline (Node's requestTimeout, per route). */
  #expire (): void {
    const now = performance.now()
    for (const [req, { res, startMs }] of this.#inFlight) {
      if (req.complete) { this.#inFlight.delete(req); continue }
      if (now - startMs < this.options.requestTimeoutMs) continue
      this.#inFlight.delete(req)
      this.counters.clientErrors++
      if (!res.headersSent) {
        try { res.writeHead(408, { connection: 'close', 'content-length': 0 }); res.end() } catch { /* socket already gone */ }
      }
      setTimeout(() => { req.socket.destroy() }, CLIENT_ERROR_LINGER_MS).unref()
    }
  }

  #run (handler: Handler, ctx: RequestContext): void {
    try {
      const out = handler(ctx)
      if (out instanceof Promise) out.catch((err: unknown) => { this.#reply(ctx.res, err) })
    } catch (err) {
      this.#reply(ctx.res, err)
    }
  }

  #reply (res: ServerResponse, err: unknown): void {
    const coded = CanopyError.is(err) ? err : CanopyError.from(err, 'ASSERTION', 'internal error')
    if (!CanopyError.is(err)) {
      this.counters.errors++
      this.options.log.error('request handler failed', { err, stack: (err as Error)?.stack?.split('\n').slice(0, 4).join(' | ') })
    }
    try { sendError(res, coded) } catch { res.destroy() }
  }

  #onClientError (err: NodeJS.ErrnoException, socket: Duplex): void {
    this.counters.clientErrors++
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    // A client that never reads or closes must not hold the socket open.
    setTimeout(() => { socket.destroy() }, CLIENT_ERROR_LINGER_MS).unref()
  }

  #onConnect (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const remote = unmap(req.socket.remoteAddress)
    socket.on('error', () => { socket.destroy() })
    if (this.#connect === null || !this.options.allow(remote)) {
      if (this.#connect !== null) this.counters.forbidden++
      socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    this.#connect(req, socket, head, remote)
  }
}
