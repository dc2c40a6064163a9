// Sending a body that may still be arriving: one byte range (RFC 9110 §14),
// then chunks as they become available, with the socket's backpressure
// respected. Used for pieces, whole files (/api/content) and the proxy.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { assert } from '../errors'

export type Span = { start: number, end: number }

/** The one range asked for: null for the whole body (no, several or malformed ranges), 'unsatisfiable' past the end. */
export function parseRange (header: string | undefined, size: number): Span | null | 'unsatisfiable' {
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header?.trim() ?? '')
  if (m === null || (m[1] === '' && m[2] === '')) return null
  if (m[1] === '') {
    const n = Number(m[2])
    return n === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - n), end: size }
  }
  const start = Number(m[1])
  if (m[2] !== '' && Number(m[2]) < start) return null
  if (start >= size) return 'unsatisfiable'
  return { start, end: m[2] === '' ? size : Math.min(size, Number(m[2]) + 1) }
}

const drained = (res: ServerResponse): Promise<void> => new Promise((resolve) => {
  const done = (): void => { res.off('drain', done); res.off('close', done); resolve() }
  res.on('drain', done)
  res.on('close', done)
})

/**
 * Answer with `size` bytes (or the range asked for): chunk(p) resolves with
 * bytes starting at offset p (at least one), waiting for them if need be.
 * Resolves with the body bytes written.
 */
export async function sendBody (req: IncomingMessage, res: ServerResponse, size: number, headers: OutgoingHttpHeaders, chunk: (p: number) => Buffer | Promise<Buffer>): Promise<number> {
  const r = parseRange(req.headers.range, size)
  if (r === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${size}`, 'content-length': 0 })
    res.end()
    return 0
  }
  const { start, end } = r ?? { start: 0, end: size }
  res.writeHead(r === null ? 200 : 206, {
    ...headers,
    'accept-ranges': 'bytes',
    'content-length': end - start,
    ...(r === null ? {} : { 'content-range': `bytes ${start}-${end - 1}/${size}` })
  })
  if (req.method === 'HEAD') { res.end(); return 0 }
  let p = start
  while (p < end && !res.destroyed) {
    const part = (await chunk(p)).subarray(0, end - p)
    assert(part.length > 0, 'a chunk starts at the offset asked for') // never spin
    p += part.length
    if (!res.write(part)) await drained(res)
  }
  res.end()
  return p - start
}
