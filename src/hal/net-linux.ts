// Real sockets: node:dgram and node:net behind the Net interface.

import { createSocket, type Socket as DgramSocket } from 'node:dgram'
import { connect as tcpConnect, createServer, type Socket } from 'node:net'
import { CanopyError } from '../errors'
import { unmapIp } from './ip'
import type { Datagram, Net, StreamSocket, TcpServer, UdpOptions, UdpSocket } from './net'


function linuxUdp (socket: DgramSocket): UdpSocket {
  const listeners: Array<(d: Datagram) => void> = []
  /** Sends not yet called back: dgram resolves the address on a later tick, so a close() right after send() would drop them. */
  let pending = 0
  const drained: Array<() => void> = []
  const settled = (): void => {
    if (--pending === 0) for (const resolve of drained.splice(0)) resolve()
  }
  const udp: UdpSocket & { sendErrors: number } = {
    sendErrors: 0,
    port: socket.address().port,
    send (data, port, address) {
      pending++
      try {
        socket.send(data, port, address, (err) => {
          if (err) udp.sendErrors++
          settled()
        })
      } catch {
        udp.sendErrors++
        settled()
      }
    },
    flush: () => pending === 0 ? Promise.resolve() : new Promise((resolve) => { drained.push(resolve) }),
    onMessage: (fn) => { listeners.push(fn) },
    joinGroup (group, interfaceAddress) {
      try {
        socket.addMembership(group, interfaceAddress)
      } catch (err) {
        throw CanopyError.from(err, 'NET_UNREACHABLE', `cannot join ${group} on ${interfaceAddress}`)
      }
    },
    leaveGroup (group, interfaceAddress) {
      try { socket.dropMembership(group, interfaceAddress) } catch { /* already gone with the interface */ }
    },
    setMulticastInterface: (interfaceAddress) => { socket.setMulticastInterface(interfaceAddress) },
    setMulticastTtl: (ttl) => { socket.setMulticastTTL(ttl) },
    close () {
      try { socket.close() } catch { /* already closed */ }
    }
  }
  socket.on('message', (data, rinfo) => {
    const d: Datagram = { data, address: unmapIp(rinfo.address), port: rinfo.port }
    for (const l of listeners) l(d)
  })
  socket.on('error', () => { udp.sendErrors++ })
  return udp
}

const bindError = (err: NodeJS.ErrnoException, message: string): CanopyError =>
  CanopyError.from(err, err.code === 'EADDRINUSE' ? 'ADDRESS_IN_USE' : 'NET_UNREACHABLE', message)

export function createLinuxNet (): Net {
  return {
    udp (options: UdpOptions): Promise<UdpSocket> {
      const address = options.address ?? '0.0.0.0'
      return new Promise((resolve, reject) => {
        const socket = createSocket({ type: 'udp4', reuseAddr: options.reuseAddr ?? false })
        const onError = (err: NodeJS.ErrnoException): void => {
          socket.close()
          reject(bindError(err, `cannot bind UDP ${address}:${options.port}`))
        }
        socket.once('error', onError)
        socket.bind(options.port, address, () => {
          socket.off('error', onError)
          socket.unref()
          resolve(linuxUdp(socket))
        })
      })
    },

    listen (options, onConnection): Promise<TcpServer> {
      const host = options.host ?? '0.0.0.0'
      return new Promise((resolve, reject) => {
        const server = createServer({ noDelay: true }, (s) => { onConnection(s) })
        server.once('error', (err: NodeJS.ErrnoException) => {
          reject(bindError(err, `cannot listen on TCP ${host}:${options.port}`))
        })
        server.listen(options.port, host, () => {
          const addr = server.address()
          resolve({
            port: typeof addr === 'object' && addr !== null ? addr.port : options.port,
            close: () => new Promise((r) => { server.close(() => r()) })
          })
        })
      })
    },

    connect (host, port, timeoutMs): Promise<StreamSocket> {
      return new Promise((resolve, reject) => {
        const s: Socket = tcpConnect({ host, port, noDelay: true })
        const timer = setTimeout(() => {
          s.destroy()
          reject(new CanopyError('TIMEOUT', `connect to ${host}:${port} took over ${timeoutMs} ms`))
        }, timeoutMs)
        s.once('connect', () => { clearTimeout(timer); s.removeAllListeners('error'); resolve(s) })
        s.once('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer)
          reject(CanopyError.from(err, err.code === 'ECONNREFUSED' ? 'NET_REFUSED' : 'NET_UNREACHABLE', `connect to ${host}:${port}`))
        })
      })
    }
  }
}
