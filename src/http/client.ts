// A small HTTP client on real sockets for origins, peers, the provider and
// the proxy's upstream: keep-alive through the caller's agent, an idle
// deadline on the socket, an abort signal for the caller's own deadline, and
// bodies refused on their declared length before a byte is buffered.

import { Agent, request as plain, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { request as tls } from 'node:https'
import { CanopyError } from '../errors'
import { HTTP_IDLE_TIMEOUT_MS, HTTP_KEEPALIVE_MS } from '../limits'

export interface OpenOptions {
  method?: string
  headers?: OutgoingHttpHeaders
  agent?: Agent
  /** Send the request to this HTTP proxy ("http://host:port") in absolute form. */
  proxy?: string
  signal?: AbortSignal
  idleMs?: number
  /** A request body to stream (the proxy's pass-through); none by default. */
  body?: NodeJS.ReadableStream
}

/**
 * A keep-alive pool for one source: its sockets close with it. Idle sockets
 * close before our own server's keep-alive limit would close them under a
 * request in flight.
 */
export const keepAlivePool = (sockets: number): Agent => new Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, timeout: HTTP_KEEPALIVE_MS - 1_000 })

/** Resolves with the response once its head has arrived (any status); a coded error otherwise. */
export function httpOpen (url: string, o: OpenOptions = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let target: URL
    try {
      target = new URL(o.proxy ?? url)
      if (!/^https?:$/.test(target.protocol)) throw new Error('not http(s)')
    } catch {
      reject(new CanopyError('INPUT_INVALID', 'not an http(s) URL'))
      return
    }
    const send = target.protocol === 'https:' ? tls : plain
    const req = send(target, {
      method: o.method ?? 'GET',
      headers: o.headers,
      agent: o.agent,
      signal: o.signal,
      ...(o.proxy === undefined ? {} : { path: url })
    }, resolve)
    req.setTimeout(o.idleMs ?? HTTP_IDLE_TIMEOUT_MS, () => { req.destroy(new CanopyError('TIMEOUT', `${target.host} stalled`)) })
    req.on('error', (e: NodeJS.ErrnoException) => {
      reject(CanopyError.is(e) ? e : o.signal?.aborted === true ? CanopyError.from(o.signal.reason, 'TIMEOUT') : new CanopyError('UPSTREAM_FAILED', `${target.host}: ${e.code ?? e.message}`))
    })
    if (o.body === undefined) req.end()
    else o.body.pipe(req)
  })
}

/**
 * The whole body: exactly `exact` bytes when given (the declared length must
 * say so before anything is buffered), else at most `max`; `pace` may hold
 * the reading back (the WAN rate cap).
 */
export function readBody (res: IncomingMessage, max: number, exact?: number, pace?: (n: number) => Promise<void> | null): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const fail = (why: string): void => { res.destroy(); reject(new CanopyError('UPSTREAM_FAILED', why)) }
    const h = res.headers['content-length']
    const declared = h === undefined ? null : Number(h)
    if (exact !== undefined ? declared !== exact : !(declared === null || declared <= max)) { fail(`${h ?? 'no'} bytes, not ${exact ?? `at most ${max}`}`); return }
    // With a declared length, one buffer from the start: each socket chunk is copied and let go at once
    // (not held until the end and copied again: half the memory per piece in flight).
    const body = declared === null ? null : Buffer.allocUnsafeSlow(declared)
    const parts: Buffer[] = []
    let n = 0
    res.on('data', (c: Buffer) => {
      if (n + c.length > (declared ?? exact ?? max)) { fail('too long'); return }
      if (body === null) parts.push(c)
      else c.copy(body, n)
      n += c.length
      const wait = pace?.(c.length)
      if (wait != null) { res.pause(); void wait.then(() => res.resume()) }
    })
    res.on('end', () => { if (declared !== null && n !== declared) fail('too short'); else resolve(body ?? Buffer.concat(parts, n)) })
    res.on('error', (e) => { reject(CanopyError.from(e, 'UPSTREAM_FAILED')) })
    res.on('aborted', () => { fail('aborted') })
  })
}
