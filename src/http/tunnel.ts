// CONNECT for the forward proxy: a byte tunnel to host:port (HTTPS), never
// looked into or cached, closed when either side closes or it idles.

import { connect } from 'node:net'
import type { Duplex } from 'node:stream'

/** A bodiless answer that closes the connection. */
export const closing = (status: string): string => `HTTP/1.1 ${status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`

export function tunnel (client: Duplex, head: Buffer, host: string, port: number, idleMs: number, done: () => void): void {
  const up = connect({ host, port })
  let open = false
  let closed = false
  const close = (): void => {
    if (closed) return
    closed = true
    up.destroy()
    client.destroy()
    done()
  }
  up.setTimeout(idleMs, close)
  up.on('connect', () => {
    open = true
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    if (head.length > 0) up.write(head)
    up.pipe(client)
    client.pipe(up)
  })
  up.on('error', () => {
    if (!open && !closed) {
      closed = true
      client.end(closing('502 Bad Gateway'))
      done()
      return
    }
    close()
  })
  up.on('close', close)
  client.on('close', close)
  client.on('error', close)
}
