// Real sockets: node:dgram and node:net behind the Net interface.

import { createSocket, type Socket as DgramSocket } from 'node:dgram'
import { connect as tcpConnect, createServer, type Socket } from 'node:net'
import { CanopyError } from '../errors'
import type { Datagram, Net, StreamSocket, TcpServer, UdpOptions, UdpSocket } from './net'

const unmap = (a: string): string => a.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')

class LinuxUdp implements UdpSocket {
  sendErrors = 0
  readonly #listeners: Array<(d: Datagram) => void> = []
  /** Sends not yet called back: dgram resolves the address on a later tick, so a close() right after send() would drop them. */
  #pending = 0
  readonly #drained: Array<() => void> = []
  constructor (private readonly socket: DgramSocket, readonly port: number) {
    socket.on('message', (data, rinfo) => {
      const d: Datagram = { data, address: unmap(rinfo.address), port: rinfo.port }
      for (const l of this.#listeners) l(d)
    })
    socket.on('error', () => { this.sendErrors++ })
  }

  send (data: Uint8Array, port: number, address: string): void {
    this.#pending++
    try {
      this.socket.send(data, port, address, (err) => {
        if (err) this.sendErrors++
        this.#settled()
      })
    } catch {
      this.sendErrors++
      this.#settled()
    }
  }

  flush (): Promise<void> {
    return this.#pending === 0 ? Promise.resolve() : new Promise((resolve) => { this.#drained.push(resolve) })
  }

  #settled (): void {
    this.#pending--
    if (this.#pending === 0) for (const resolve of this.#drained.splice(0)) resolve()
  }

  onMessage (fn: (d: Datagram) => void): void { this.#listeners.push(fn) }

  joinGroup (group: string, interfaceAddress: string): void {
    try {
      this.socket.addMembership(group, interfaceAddress)
    } catch (err) {
      throw CanopyError.from(err, 'NET_UNREACHABLE', `cannot join ${group} on ${interfaceAddress}`)
    }
  }

  leaveGroup (group: string, interfaceAddress: string): void {
    try { this.socket.dropMembership(group, interfaceAddress) } catch { /* already gone with the interface */ }
  }

  setMulticastInterface (interfaceAddress: string): void { this.socket.setMulticastInterface(interfaceAddress) }
  setMulticastTtl (ttl: number): void { this.socket.setMulticastTTL(ttl) }

  close (): void {
    try { this.socket.close() } catch { /* already closed */ }
  }
}

export function createLinuxNet (): Net {
  return {
    udp (options: UdpOptions): Promise<UdpSocket> {
      return new Promise((resolve, reject) => {
        const socket = createSocket({ type: 'udp4', reuseAddr: options.reuseAddr ?? false })
        const onError = (err: NodeJS.ErrnoException): void => {
          socket.close()
          reject(CanopyError.from(err, err.code === 'EADDRINUSE' ? 'ADDRESS_IN_USE' : 'NET_UNREACHABLE', `cannot bind UDP ${options.address ?? '0.0.0.0'}:${options.port}`))
        }
        socket.once('error', onError)
        socket.bind(options.port, options.address ?? '0.0.0.0', () => {
          socket.off('error', onError)
          socket.unref()
          resolve(new LinuxUdp(socket, socket.address().port))
        })
      })
    },

    listen (options, onConnection): Promise<TcpServer> {
      return new Promise((resolve, reject) => {
        const server = createServer({ noDelay: true }, (s) => { onConnection(s) })
        server.once('error', (err: NodeJS.ErrnoException) => {
          reject(CanopyError.from(err, err.code === 'EADDRINUSE' ? 'ADDRESS_IN_USE' : 'NET_UNREACHABLE', `cannot listen on TCP ${options.host ?? '0.0.0.0'}:${options.port}`))
        })
        server.listen(options.port, options.host ?? '0.0.0.0', () => {
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
