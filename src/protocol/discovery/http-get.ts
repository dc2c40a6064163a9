// A small, strict HTTP/1.1 GET over the HAL's TCP streams, for fetching a
// peer's self-description: one request per connection, a deadline on the
// whole exchange (HAL clock), the status line and headers bounded, the body
// refused on its declared length before a byte of it is kept, and bounded
// again as it arrives. Only 200 with plain framing (Content-Length, or the
// connection's end) is accepted: no redirects, no chunked bodies.
//
// Because it runs on hal.net, the same code fetches from real agents on
// Linux sockets and from simulated agents on a SimNetwork.

import { CanopyError } from '../../errors'
import type { Clock, Net, StreamSocket } from '../../hal'

export interface GetTarget { host: string, port: number, path: string }

export interface GetLimits {
  timeoutMs: number
  headBytesMax: number
  bodyBytesMax: number
}

const failed = (why: string): CanopyError => new CanopyError('DESCRIBE_FETCH_FAILED', `GET: ${why}`)

export interface ResponseReader {
  /** Feed bytes; returns the body once it is complete (Content-Length reached), else null. */
  push (chunk: Buffer): Buffer | null
  /** The connection ended: the body, if the framing says it is complete. */
  end (): Buffer
}

/** Reads one response from the bytes of a connection. */
export function responseReader ({ headBytesMax, bodyBytesMax }: Omit<GetLimits, 'timeoutMs'>): ResponseReader {
  /** The head so far, then null once it is parsed. */
  let head: Buffer | null = Buffer.alloc(0)
  const body: Buffer[] = []
  let bodyBytes = 0
  let contentLength: number | null = null

  const parseHead = (text: string): void => {
    const lines = text.split('\r\n')
    const status = /^HTTP\/1\.[01] (\d{3})(?: [\x20-\x7e\x80-\xff]*)?$/.exec(lines[0]!)
    if (status?.[1] !== '200') throw failed(`status ${status?.[1] ?? 'line'}`) // no redirects
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      if (colon <= 0 || (name === 'transfer-encoding' && value.toLowerCase() !== 'identity')) throw failed(`header ${name}`) // no chunked bodies
      if (name === 'content-length') {
        const n = Number(value)
        if (!/^\d{1,9}$/.test(value) || (contentLength ?? n) !== n || n > bodyBytesMax) throw failed('Content-Length')
        contentLength = n
      }
    }
  }

  return {
    push (chunk) {
      if (head) {
        const all = Buffer.concat([head, chunk])
        const end = all.indexOf('\r\n\r\n')
        if ((end === -1 ? all.length : end + 4) > headBytesMax) throw failed('head too large')
        if (end === -1) {
          head = all
          return null
        }
        parseHead(all.subarray(0, end).toString('latin1'))
        head = null
        chunk = all.subarray(end + 4)
      }
      const n = (bodyBytes += chunk.length)
      // Bounded on the declared length before a byte is kept (parseHead), then as bytes arrive.
      if (n > bodyBytesMax || n > (contentLength ?? n)) throw failed('body too large')
      body.push(chunk)
      return n === contentLength ? Buffer.concat(body) : null
    },
    end () {
      if (head || (contentLength ?? bodyBytes) !== bodyBytes) throw failed('cut short')
      return Buffer.concat(body)
    }
  }
}

/** GET http://host:port/path; resolves with the body or rejects with a coded error (TIMEOUT, NET_*, DESCRIBE_FETCH_FAILED). */
export async function httpGet (net: Net, clock: Clock, target: GetTarget, limits: GetLimits, userAgent: string): Promise<Buffer> {
  const { host, port, path } = target
  let socket: StreamSocket | undefined
  let late = false
  // One deadline for the whole exchange: connect, request, response.
  const timer = clock.setTimeout(() => { late = true; socket?.destroy() }, limits.timeoutMs)
  try {
    socket = await net.connect(host, port, limits.timeoutMs)
    if (late) socket.destroy() // connected just after the deadline
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: ${userAgent}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`)
    const reader = responseReader(limits)
    for await (const chunk of socket) {
      const body = late ? null : reader.push(chunk as Buffer)
      if (body) return body
    }
    if (!late) return reader.end()
  } catch (err) {
    if (!late) throw CanopyError.from(err, 'NET_CLOSED', `GET ${host}:${port}`)
  } finally {
    timer.cancel()
    socket?.destroy()
  }
  throw new CanopyError('TIMEOUT', `GET ${host}:${port}: over ${limits.timeoutMs} ms`)
}
