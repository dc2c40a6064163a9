// GET /api/describe on a bare hal.net listener. The agent serves describe on
// its real HTTP server (node:http); simulated agents have no such server, so
// simulations and benchmarks put this one on their SimHost instead. It speaks
// just enough HTTP/1.1 for httpGet: one bounded request, one response, close.

import type { Net, StreamSocket, TcpServer } from '../../hal'
import { DESCRIBE_HEAD_BYTES_MAX } from '../../limits'
import { NONCE_PATTERN } from './describe'
import { DESCRIBE_PATH } from '../ssdp/names'

function respond (s: StreamSocket, status: string, body: Buffer): void {
  s.end(Buffer.concat([
    Buffer.from(`HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`),
    body
  ]))
}

/** Serve describe(nonce) at DESCRIBE_PATH on port; everything else gets 404/400. */
export function serveDescribe (net: Net, port: number, describe: (nonce: string | null) => Buffer): Promise<TcpServer> {
  return net.listen({ port }, (s) => {
    let head = Buffer.alloc(0)
    let answered = false
    s.on('error', () => { s.destroy() })
    s.on('data', (chunk: Buffer) => {
      if (answered) return
      head = Buffer.concat([head, chunk])
      if (head.indexOf('\r\n\r\n') === -1) {
        if (head.length > DESCRIBE_HEAD_BYTES_MAX) s.destroy()
        return
      }
      answered = true
      const line = head.subarray(0, head.indexOf('\r\n')).toString('latin1')
      const m = /^GET (\/\S*) HTTP\/1\.[01]$/.exec(line)
      if (m === null) { respond(s, '400 Bad Request', Buffer.from('{}')); return }
      const url = new URL(m[1]!, 'http://sim.invalid')
      const nonce = url.searchParams.get('nonce')
      if (url.pathname !== DESCRIBE_PATH) { respond(s, '404 Not Found', Buffer.from('{}')); return }
      if (nonce !== null && !NONCE_PATTERN.test(nonce)) { respond(s, '400 Bad Request', Buffer.from('{}')); return }
      respond(s, '200 OK', describe(nonce))
    })
  })
}
