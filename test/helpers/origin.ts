// A plain HTTP origin for tests: files from memory with Range, ETag and
// Last-Modified (as nginx serves them), chosen headers per path, and counts
// of requests and body bytes sent per path (the "WAN bytes" of a test).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHash } from 'node:crypto'

export interface OriginFile {
  body: Buffer
  headers?: Record<string, string>
  /** Answer Range requests (default true). */
  ranges?: boolean
  /** Delay before the head, ms. */
  delayMs?: number
}

export interface Origin {
  url (path: string): string
  files: Map<string, OriginFile>
  /** Body bytes sent, per path and in all. */
  sent: Map<string, number>
  requests: Array<{ path: string, method: string, headers: IncomingMessage['headers'] }>
  total (): number
  close (): Promise<void>
}

export async function startOrigin (host = '127.0.0.1'): Promise<Origin> {
  const files = new Map<string, OriginFile>()
  const sent = new Map<string, number>()
  const requests: Origin['requests'] = []
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    requests.push({ path, method: req.method ?? 'GET', headers: req.headers })
    const f = files.get(path)
    const answer = (): void => {
      if (f === undefined) { res.writeHead(404, { 'content-length': 0 }); res.end(); return }
      const etag = `"${createHash('sha256').update(f.body).digest('hex').slice(0, 16)}"`
      const head: Record<string, string> = { 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT', date: new Date().toUTCString(), etag, 'content-type': 'application/octet-stream', ...f.headers }
      if (req.headers['if-none-match'] === etag) { res.writeHead(304, head); res.end(); return }
      let start = 0
      let end = f.body.length
      const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''))
      if (m !== null && f.ranges !== false) {
        start = Number(m[1])
        end = m[2] === '' ? f.body.length : Math.min(f.body.length, Number(m[2]) + 1)
        res.writeHead(206, { ...head, 'content-range': `bytes ${start}-${end - 1}/${f.body.length}`, 'content-length': end - start })
      } else {
        res.writeHead(200, { ...head, 'content-length': f.body.length })
      }
      if (req.method === 'HEAD') { res.end(); return }
      sent.set(path, (sent.get(path) ?? 0) + end - start)
      res.end(f.body.subarray(start, end))
    }
    if (f?.delayMs !== undefined) setTimeout(answer, f.delayMs)
    else answer()
  })
  server.keepAliveTimeout = 1_000
  await new Promise<void>((resolve) => { server.listen(0, host, resolve) })
  const port = (server.address() as AddressInfo).port
  return {
    url: (path) => `http://${host}:${port}${path}`,
    files,
    sent,
    requests,
    total: () => [...sent.values()].reduce((a, b) => a + b, 0),
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => { resolve() }) })
  }
}
