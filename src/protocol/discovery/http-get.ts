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

const failed = (why: string): CanopyError => new CanopyError('DESCRIBE_FETCH_FAILED', why)

/** Reads one response from the bytes of a connection. */
export class ResponseReader {
  #head: Buffer[] = []
  #headBytes = 0
  #body: Buffer[] = []
  #bodyBytes = 0
  #contentLength: number | null = null
  #inBody = false

  readonly #limits: Omit<GetLimits, 'timeoutMs'>
  constructor (limits: Omit<GetLimits, 'timeoutMs'>) {
    this.#limits = limits
  }

  /** Feed bytes; returns the body once it is complete (Content-Length reached), else null. */
  push (chunk: Buffer): Buffer | null {
    if (!this.#inBody) {
      this.#head.push(chunk)
      this.#headBytes += chunk.length
      const all = Buffer.concat(this.#head)
      const end = all.indexOf('\r\n\r\n')
      if (end === -1) {
        if (all.length > this.#limits.headBytesMax) throw failed(`response headers exceed ${this.#limits.headBytesMax} bytes`)
        this.#head = [all]
        return null
      }
      if (end + 4 > this.#limits.headBytesMax) throw failed(`response headers exceed ${this.#limits.headBytesMax} bytes`)
      this.#parseHead(all.subarray(0, end).toString('latin1'))
      this.#inBody = true
      this.#head = []
      chunk = all.subarray(end + 4)
    }
    if (chunk.length > 0) {
      this.#bodyBytes += chunk.length
      if (this.#bodyBytes > this.#limits.bodyBytesMax) throw failed(`body exceeds ${this.#limits.bodyBytesMax} bytes`)
      if (this.#contentLength !== null && this.#bodyBytes > this.#contentLength) throw failed('more bytes than Content-Length')
      this.#body.push(chunk)
    }
    if (this.#contentLength !== null && this.#bodyBytes === this.#contentLength) return Buffer.concat(this.#body)
    return null
  }

  /** The connection ended: the body, if the framing says it is complete. */
  end (): Buffer {
    if (!this.#inBody) throw failed('connection ended inside the response headers')
    if (this.#contentLength !== null && this.#bodyBytes !== this.#contentLength) throw failed('connection ended before Content-Length bytes')
    return Buffer.concat(this.#body)
  }

  #parseHead (text: string): void {
    const lines = text.split('\r\n')
    const status = /^HTTP\/1\.[01] (\d{3})(?: [\x20-\x7e\x80-\xff]*)?$/.exec(lines[0] ?? '')
    if (status === null) throw failed('not an HTTP/1.x response')
    if (status[1] !== '200') throw failed(`HTTP status ${status[1]}`)
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon <= 0) throw failed('a malformed response header')
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity') throw failed('chunked or encoded bodies are not accepted')
      if (name === 'content-length') {
        if (!/^\d{1,9}$/.test(value)) throw failed('a malformed Content-Length')
        const n = Number(value)
        if (this.#contentLength !== null && this.#contentLength !== n) throw failed('two different Content-Lengths')
        if (n > this.#limits.bodyBytesMax) throw failed(`declared body of ${n} bytes exceeds ${this.#limits.bodyBytesMax}`)
        this.#contentLength = n
      }
    }
  }
}

/** GET http://host:port/path; resolves with the body or rejects with a coded error (TIMEOUT, NET_*, DESCRIBE_FETCH_FAILED). */
export function httpGet (net: Net, clock: Clock, target: GetTarget, limits: GetLimits, userAgent: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let socket: StreamSocket | null = null
    let done = false
    const finish = (err: unknown, body?: Buffer): void => {
      if (done) return
      done = true
      timer.cancel()
      socket?.destroy()
      if (err === null && body !== undefined) resolve(body)
      else reject(CanopyError.is(err) ? err : CanopyError.from(err, 'NET_CLOSED', `GET ${target.host}:${target.port}`))
    }
    const timer = clock.setTimeout(() => {
      finish(new CanopyError('TIMEOUT', `GET http://${target.host}:${target.port}${target.path} took over ${limits.timeoutMs} ms`))
    }, limits.timeoutMs)
    const reader = new ResponseReader(limits)
    net.connect(target.host, target.port, limits.timeoutMs).then((s) => {
      if (done) { s.destroy(); return }
      socket = s
      s.on('error', (err: unknown) => { finish(err) })
      s.on('data', (chunk: Buffer) => {
        try {
          const body = reader.push(chunk)
          if (body !== null) finish(null, body)
        } catch (err) {
          finish(err)
        }
      })
      s.on('end', () => {
        try { finish(null, reader.end()) } catch (err) { finish(err) }
      })
      s.on('close', () => { finish(new CanopyError('NET_CLOSED', 'connection closed before the response')) })
      s.write(`GET ${target.path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\nUser-Agent: ${userAgent}\r\n` +
        'Accept: application/json\r\nConnection: close\r\n\r\n')
    }, (err: unknown) => { finish(err) })
  })
}
