// The one HTTP port: bounded (header bytes, header and request deadlines,
// connection cap, requests per socket), routed, and crash-proof: a handler's
// error becomes a coded 4xx/5xx, a malformed request a 400 and a closed socket.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { AddressInfo } from 'node:net'
import { CanopyError } from '../errors'
import { unmapIp } from '../hal/ip'
import {
  HTTP_HEADER_BYTES_MAX, HTTP_KEEPALIVE_MS, HTTP_REQUESTS_PER_SOCKET_MAX, HTTP_TIMEOUT_CHECK_MS
} from '../limits'
import type { Logger } from '../log'
import { sendError } from './respond'
import { matchRoute, splitPath, type Handler, type RequestContext, type Route, type RouteOptions } from './router'

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

/** A client that never reads or closes must not hold the socket open. */
const linger = (socket: Duplex): void => { setTimeout(() => { socket.destroy() }, CLIENT_ERROR_LINGER_MS).unref() }

/** A bare status line on a socket outside the request cycle (parse errors, CONNECT), then close. */
const refuse = (socket: Duplex, status: string): void => { socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`) }


/** The one HTTP port (make one with createHttpServer). */
export interface HttpServer {
  readonly counters: HttpCounters
  route (method: string, pattern: string, handler: Handler, options?: RouteOptions): void
  setProxy (handler: ProxyHandler | null): void
  setConnect (handler: ConnectHandler | null): void
  listen (): Promise<AddressInfo>
  address (): AddressInfo | null
  /** Stop accepting, let in-flight requests finish until deadline, then cut what is left. */
  close (deadlineMs: number): Promise<void>
}

export function createHttpServer (options: HttpServerOptions): HttpServer {
  const { host, port, log, allow } = options
  const counters: HttpCounters = { requests: 0, errors: 0, clientErrors: 0, forbidden: 0 }
  const routes: Route[] = []
  let proxy: ProxyHandler | null = null
  let connect: ConnectHandler | null = null
  let closing = false
  /** Requests still arriving, by when they started: the whole request must arrive within requestTimeoutMs. */
  const inFlight = new Map<IncomingMessage, { res: ServerResponse, startMs: number }>()
  let sweep: NodeJS.Timeout | null = null

  const reply = (res: ServerResponse, err: unknown): void => {
    const coded = CanopyError.from(err, 'ASSERTION', 'internal error')
    if (!CanopyError.is(err)) {
      counters.errors++
      log.error('handler failed', { err, stack: (err as Error)?.stack?.split('\n').slice(0, 4).join(' | ') })
    }
    try { sendError(res, coded) } catch { res.destroy() }
  }
  const forbid = (res: ServerResponse): void => {
    counters.forbidden++
    reply(res, new CanopyError('HTTP_FORBIDDEN', 'loopback and LAN clients only'))
  }

  const run = (handler: Handler, ctx: RequestContext): void => {
    try {
      const out = handler(ctx)
      if (out instanceof Promise) out.catch((err: unknown) => { reply(ctx.res, err) })
    } catch (err) {
      reply(ctx.res, err)
    }
  }

  /** 408 and a closed socket for requests whose body is still arriving past the deadline (Node's requestTimeout, per route). */
  const expire = (): void => {
    const now = performance.now()
    for (const [req, { res, startMs }] of inFlight) {
      if (req.complete) { inFlight.delete(req); continue }
      if (now - startMs < options.requestTimeoutMs) continue
      inFlight.delete(req)
      counters.clientErrors++
      if (!res.headersSent) {
        try { res.writeHead(408, { connection: 'close', 'content-length': 0 }); res.end() } catch { /* socket already gone */ }
      }
      linger(req.socket)
    }
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    counters.requests++
    inFlight.set(req, { res, startMs: performance.now() })
    sweep ??= setInterval(expire, HTTP_TIMEOUT_CHECK_MS).unref()
    const done = (): void => { inFlight.delete(req) }
    req.once('end', done)
    res.once('close', done)
    const remote = unmapIp(req.socket.remoteAddress)
    if (closing) res.setHeader('connection', 'close')
    const rawUrl = req.url ?? '/'
    let url: URL
    try {
      url = new URL(rawUrl, 'http://canopy.invalid')
    } catch {
      reply(res, new CanopyError('HTTP_BAD_REQUEST', 'bad request target'))
      return
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rawUrl)) { // absolute form: a forward-proxy request
      if (proxy === null) reply(res, new CanopyError('HTTP_FORBIDDEN', 'not a forward proxy'))
      else if (!allow(remote)) forbid(res)
      else run(proxy, { req, res, url, remote, params: {} })
      return
    }
    const match = matchRoute(routes, req.method ?? 'GET', url.pathname)
    if (match === null) {
      reply(res, new CanopyError('HTTP_NOT_FOUND', `no resource ${url.pathname}`))
    } else if (match === 'method') {
      reply(res, new CanopyError('HTTP_METHOD_NOT_ALLOWED', `${req.method ?? ''} not allowed on ${url.pathname}`))
    } else {
      const { handler, options: o } = match.route
      if (o.longBody === true) inFlight.delete(req)
      if (o.access !== 'any' && !allow(remote)) forbid(res)
      else run(handler, { req, res, url, remote, params: match.params })
    }
  }

  const server: Server = createServer({
    maxHeaderSize: HTTP_HEADER_BYTES_MAX,
    headersTimeout: options.headersTimeoutMs,
    // Node's requestTimeout would cut a live ingest's endless body; handle() keeps the deadline per route instead.
    requestTimeout: 0,
    keepAliveTimeout: HTTP_KEEPALIVE_MS,
    connectionsCheckingInterval: HTTP_TIMEOUT_CHECK_MS,
    noDelay: true
  }, handle)
  server.maxConnections = options.connectionsMax
  server.maxRequestsPerSocket = HTTP_REQUESTS_PER_SOCKET_MAX
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    counters.clientErrors++
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'
    refuse(socket, status)
    linger(socket)
  })
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const remote = unmapIp(req.socket.remoteAddress)
    socket.on('error', () => { socket.destroy() })
    if (connect === null || !allow(remote)) {
      if (connect !== null) counters.forbidden++
      refuse(socket, '403 Forbidden')
      return
    }
    connect(req, socket, head, remote)
  })

  return {
    counters,
    route: (method, pattern, handler, options = {}) => { routes.push({ method: method.toUpperCase(), segments: splitPath(pattern), handler, options }) },
    setProxy: (handler) => { proxy = handler },
    setConnect: (handler) => { connect = handler },

    listen: () => new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        server.removeAllListeners('listening')
        reject(err.code === 'EADDRINUSE'
          ? new CanopyError('ADDRESS_IN_USE', `${host}:${port} is in use (see --http)`)
          : CanopyError.from(err, 'FILE_IO', `cannot listen on ${host}:${port}`))
      })
      server.listen(port, host, () => {
        server.removeAllListeners('error')
        server.on('error', (err) => { log.error('server error', { err }) })
        resolve(server.address() as AddressInfo)
      })
    }),

    address: () => {
      const a = server.address()
      return typeof a === 'object' ? a : null // null is an object too
    },

    async close (deadlineMs) {
      if (closing) return
      closing = true
      const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      server.closeIdleConnections()
      const timer = setTimeout(() => { server.closeAllConnections() }, Math.max(0, deadlineMs))
      timer.unref()
      await closed
      clearTimeout(timer)
      if (sweep !== null) clearInterval(sweep)
      inFlight.clear()
    }
  }
}
