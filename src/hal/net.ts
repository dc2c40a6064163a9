// Sockets behind an interface: UDP (with multicast per interface) and TCP
// streams. The Linux twin is net-linux.ts on node:dgram/node:net; the
// simulated twin (net-sim.ts) puts many hosts in one process on a seeded,
// lossy, delayed network driven by the simulated clock.

import type { Duplex } from 'node:stream'

export interface Datagram {
  data: Buffer
  /** Source address (IPv4-mapped IPv6 unwrapped). */
  address: string
  port: number
}

export interface UdpOptions {
  port: number
  /** Bind address; default 0.0.0.0. */
  address?: string
  /** Share the port with other sockets (SSDP's 1900). */
  reuseAddr?: boolean
}

export interface UdpSocket {
  /** The bound local port. */
  readonly port: number
  /** Fire and forget; failures are counted in sendErrors, never thrown. */
  send (data: Uint8Array, port: number, address: string): void
  onMessage (fn: (d: Datagram) => void): void
  /** Join a multicast group on the interface that holds interfaceAddress. */
  joinGroup (group: string, interfaceAddress: string): void
  leaveGroup (group: string, interfaceAddress: string): void
  /** Multicast sends leave through the interface that holds this address. */
  setMulticastInterface (interfaceAddress: string): void
  setMulticastTtl (ttl: number): void
  readonly sendErrors: number
  /** Resolves once every datagram sent so far has left (or failed): send a byebye, flush, then close. */
  flush? (): Promise<void>
  close (): void
}

/** A connected TCP stream: a Node Duplex with the peer's address. */
export interface StreamSocket extends Duplex {
  readonly remoteAddress?: string | undefined
  readonly remotePort?: number | undefined
  setNoDelay? (noDelay?: boolean): unknown
}

export interface TcpServer {
  readonly port: number
  close (): Promise<void>
}

export interface Net {
  udp (options: UdpOptions): Promise<UdpSocket>
  listen (options: { port: number, host?: string }, onConnection: (socket: StreamSocket) => void): Promise<TcpServer>
  /** NET_REFUSED, NET_UNREACHABLE or TIMEOUT on failure. */
  connect (host: string, port: number, timeoutMs: number): Promise<StreamSocket>
}
