// A simulated network: many hosts in one process, each with interfaces and
// addresses, exchanging UDP datagrams (unicast and multicast on a subnet) and
// TCP streams over links with latency, jitter, loss, duplication, partitions
// and per-host uplink rates. Every delay runs on the SimClock and every coin
// is seeded, so a run replays exactly.

import { Duplex } from 'node:stream'
import { CanopyError } from '../errors'
import type { SimClock } from './clock-sim'
import { addressScope, inPrefix, parseIp } from './ip'
import type { Datagram, Net, StreamSocket, TcpServer, UdpOptions, UdpSocket } from './net'
import type { RawNic } from './nic'
import { createSeededRandom, type Random } from './random'

export interface LinkConditions {
  /** One-way delay. */
  latencyMs: number
  /** Extra uniform delay in [0, jitterMs) per datagram (reorders datagrams). */
  jitterMs: number
  /** Probability a datagram is lost. */
  loss: number
  /** Probability a datagram arrives twice. */
  duplicate: number
}

export interface SimInterface { nic: string, address: string, prefixLength: number }

export interface SimNetworkStats {
  datagramsSent: number
  datagramsDelivered: number
  datagramsLost: number
  datagramBytes: number
  streamBytes: number
  connections: number
}

const DEFAULT_CONDITIONS: LinkConditions = { latencyMs: 1, jitterMs: 0, loss: 0, duplicate: 0 }
const isMulticast = (a: string): boolean => { const ip = parseIp(a); return ip !== null && addressScope(ip) === 'multicast' }

export class SimNetwork {
  readonly stats: SimNetworkStats = { datagramsSent: 0, datagramsDelivered: 0, datagramsLost: 0, datagramBytes: 0, streamBytes: 0, connections: 0 }
  conditions: LinkConditions
  readonly random: Random
  readonly #hosts = new Map<string, SimHost>()
  readonly #byAddress = new Map<string, SimHost>()
  #groups: Map<SimHost, number> | null = null

  constructor (readonly clock: SimClock, options: { seed: number, conditions?: Partial<LinkConditions> }) {
    this.random = createSeededRandom(options.seed)
    this.conditions = { ...DEFAULT_CONDITIONS, ...options.conditions }
  }

  addHost (name: string, interfaces: SimInterface[], options: { uplinkBytesPerSec?: number } = {}): SimHost {
    if (this.#hosts.has(name)) throw new CanopyError('ASSERTION', `sim host ${name} exists`)
    const host = new SimHost(this, name, interfaces, options.uplinkBytesPerSec ?? 0)
    this.#hosts.set(name, host)
    for (const i of interfaces) {
      if (this.#byAddress.has(i.address)) throw new CanopyError('ASSERTION', `address ${i.address} used twice`)
      this.#byAddress.set(i.address, host)
    }
    return host
  }

  host (name: string): SimHost | undefined { return this.#hosts.get(name) }
  hostAt (address: string): SimHost | undefined { return this.#byAddress.get(address) }
  allHosts (): SimHost[] { return [...this.#hosts.values()] }

  setConditions (c: Partial<LinkConditions>): void { this.conditions = { ...this.conditions, ...c } }

  /** Hosts in different groups cannot reach each other; hosts in no group reach everyone. null heals. */
  partition (groups: SimHost[][] | null): void {
    if (groups === null) { this.#groups = null; return }
    this.#groups = new Map()
    groups.forEach((g, i) => { for (const h of g) this.#groups!.set(h, i) })
  }

  /** Can a packet go from a to b right now? */
  reachable (a: SimHost, b: SimHost): boolean {
    if (!a.alive || !b.alive) return false
    if (this.#groups === null) return true
    const ga = this.#groups.get(a)
    const gb = this.#groups.get(b)
    return ga === undefined || gb === undefined || ga === gb
  }

  /** One-way delay for a datagram, with jitter. */
  datagramDelay (): number {
    const c = this.conditions
    return c.latencyMs + (c.jitterMs > 0 ? this.random.float() * c.jitterMs : 0)
  }

  sendDatagram (from: SimHost, fromIface: SimInterface, fromPort: number, data: Buffer, toAddress: string, toPort: number): void {
    this.stats.datagramsSent++
    this.stats.datagramBytes += data.length
    const targets: Array<{ host: SimHost, iface: SimInterface }> = []
    if (isMulticast(toAddress)) {
      for (const host of this.#hosts.values()) {
        for (const iface of host.interfaces) if (sameSubnet(iface, fromIface)) targets.push({ host, iface })
      }
    } else {
      const host = this.#byAddress.get(toAddress)
      const iface = host?.interfaces.find((i) => i.address === toAddress)
      if (host !== undefined && iface !== undefined) targets.push({ host, iface })
    }
    for (const t of targets) {
      if (this.random.float() < this.conditions.loss) { this.stats.datagramsLost++; continue }
      const copies = this.random.float() < this.conditions.duplicate ? 2 : 1
      for (let i = 0; i < copies; i++) {
        const delay = t.host === from ? 0 : this.datagramDelay()
        this.clock.setTimeout(() => {
          if (!this.reachable(from, t.host)) { this.stats.datagramsLost++; return }
          if (t.host.deliverDatagram(t.iface, toAddress, toPort, { data: Buffer.from(data), address: fromIface.address, port: fromPort })) this.stats.datagramsDelivered++
        }, delay)
      }
    }
  }
}

function sameSubnet (a: SimInterface, b: SimInterface): boolean {
  const pa = parseIp(a.address)
  const pb = parseIp(b.address)
  return pa !== null && pb !== null && a.prefixLength === b.prefixLength && inPrefix(pa, pb, b.prefixLength)
}

class SimUdp implements UdpSocket {
  sendErrors = 0
  closed = false
  readonly memberships = new Set<string>() // `${group}|${interfaceAddress}`
  readonly #listeners: Array<(d: Datagram) => void> = []
  #multicastIface: SimInterface | undefined

  constructor (private readonly host: SimHost, readonly port: number, readonly bindAddress: string, readonly reuseAddr = false) {
    this.#multicastIface = host.interfaces[0]
  }

  send (data: Uint8Array, port: number, address: string): void {
    if (this.closed || !this.host.alive) { this.sendErrors++; return }
    const iface = isMulticast(address) ? this.#multicastIface : this.host.interfaceToward(address)
    if (iface === undefined) { this.sendErrors++; return }
    this.host.network.sendDatagram(this.host, iface, this.port, Buffer.from(data), address, port)
  }

  onMessage (fn: (d: Datagram) => void): void { this.#listeners.push(fn) }

  /** Sends are on the network the moment send() returns. */
  async flush (): Promise<void> {}

  joinGroup (group: string, interfaceAddress: string): void {
    if (this.host.interfaces.find((i) => i.address === interfaceAddress) === undefined) {
      throw new CanopyError('NET_UNREACHABLE', `no interface with address ${interfaceAddress}`)
    }
    this.memberships.add(`${group}|${interfaceAddress}`)
  }

  leaveGroup (group: string, interfaceAddress: string): void { this.memberships.delete(`${group}|${interfaceAddress}`) }

  setMulticastInterface (interfaceAddress: string): void {
    const i = this.host.interfaces.find((x) => x.address === interfaceAddress)
    if (i === undefined) throw new CanopyError('NET_UNREACHABLE', `no interface with address ${interfaceAddress}`)
    this.#multicastIface = i
  }

  setMulticastTtl (): void { /* one subnet per segment: TTL has nothing to limit here */ }

  close (): void {
    this.closed = true
    this.host.udpSockets.delete(this)
  }

  deliver (d: Datagram): void {
    for (const l of this.#listeners) l(d)
  }
}

class SimStream extends Duplex implements StreamSocket {
  peer: SimStream | null = null
  /** Set when the path broke silently (partition, dead host): nothing more arrives. */
  blackHoled = false
  #lastArrival = 0

  constructor (private readonly host: SimHost, readonly remoteAddress: string, readonly remotePort: number) {
    super({ allowHalfOpen: false })
    host.streams.add(this)
    this.once('close', () => { host.streams.delete(this) })
  }

  setNoDelay (): this { return this }

  override _read (): void {}

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const net = this.host.network
    const now = net.clock.nowMs()
    const rate = this.host.uplinkBytesPerSec
    const start = Math.max(now, this.host.uplinkFreeAt)
    const done = rate > 0 ? start + (chunk.length * 1000) / rate : start
    this.host.uplinkFreeAt = done
    // TCP delivers in order: never before the previous chunk.
    const arrival = Math.max(done + net.conditions.latencyMs, this.#lastArrival)
    this.#lastArrival = arrival
    net.stats.streamBytes += chunk.length
    const copy = Buffer.from(chunk)
    net.clock.setTimeout(() => { this.#arrive(copy) }, arrival - now)
    net.clock.setTimeout(() => { cb() }, done - now)
  }

  override _final (cb: (err?: Error | null) => void): void {
    const net = this.host.network
    const now = net.clock.nowMs()
    const at = Math.max(now + net.conditions.latencyMs, this.#lastArrival)
    net.clock.setTimeout(() => { this.#arrive(null) }, at - now)
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    const peer = this.peer
    if (peer !== null && !this.host.killed) {
      // A close (FIN/RST) reaches the peer after one latency, if the path is up.
      const net = this.host.network
      net.clock.setTimeout(() => {
        if (!this.blackHoled && net.reachable(this.host, peer.host) && !peer.destroyed) {
          peer.push(null)
          peer.destroy()
        }
      }, net.conditions.latencyMs)
    }
    cb(err)
  }

  #arrive (chunk: Buffer | null): void {
    const peer = this.peer
    if (peer === null || peer.destroyed) return
    if (this.blackHoled || !this.host.network.reachable(this.host, peer.host)) {
      this.blackHoled = true // TCP would retransmit into the void until a timeout; the app's heartbeats notice first
      return
    }
    peer.push(chunk)
  }
}

export class SimHost implements Net {
  alive = true
  killed = false
  uplinkFreeAt = 0
  readonly udpSockets = new Set<SimUdp>()
  readonly streams = new Set<SimStream>()
  readonly #servers = new Map<number, (s: StreamSocket) => void>()
  #nextPort = 40000

  constructor (readonly network: SimNetwork, readonly name: string, readonly interfaces: SimInterface[], readonly uplinkBytesPerSec: number) {}

  /** The interfaces as the NIC HAL would report them. */
  rawNics (): RawNic[] {
    const byNic = new Map<string, RawNic>()
    for (const i of this.interfaces) {
      const nic = byNic.get(i.nic) ?? { name: i.nic, up: true, multicast: true, loopback: false, speedMbps: 1000, addresses: [] }
      nic.addresses.push({ family: i.address.includes(':') ? 6 : 4, address: i.address, prefixLength: i.prefixLength })
      byNic.set(i.nic, nic)
    }
    return [...byNic.values()]
  }

  get address (): string { return this.interfaces[0]?.address ?? '0.0.0.0' }

  interfaceToward (address: string): SimInterface | undefined {
    const ip = parseIp(address)
    if (ip === null) return undefined
    for (const i of this.interfaces) {
      const own = parseIp(i.address)
      if (own !== null && inPrefix(ip, own, i.prefixLength)) return i
    }
    return this.interfaces[0]
  }

  async udp (options: UdpOptions): Promise<UdpSocket> {
    this.#assertAlive()
    let port = options.port
    if (port === 0) port = this.#nextPort++
    // As on Linux: sharing a port takes SO_REUSEADDR on every socket that holds it.
    const holders = [...this.udpSockets].filter((s) => s.port === port && (s.bindAddress === (options.address ?? '0.0.0.0')))
    if (holders.length > 0 && (options.reuseAddr !== true || holders.some((s) => !s.reuseAddr))) throw new CanopyError('ADDRESS_IN_USE', `UDP port ${port} in use on ${this.name}`)
    const s = new SimUdp(this, port, options.address ?? '0.0.0.0', options.reuseAddr === true)
    this.udpSockets.add(s)
    return s
  }

  deliverDatagram (iface: SimInterface, toAddress: string, toPort: number, d: Datagram): boolean {
    if (!this.alive) return false
    let delivered = false
    const multicast = isMulticast(toAddress)
    for (const s of this.udpSockets) {
      if (s.closed || s.port !== toPort) continue
      if (s.bindAddress !== '0.0.0.0' && s.bindAddress !== toAddress && s.bindAddress !== iface.address) continue
      if (multicast && !s.memberships.has(`${toAddress}|${iface.address}`)) continue
      s.deliver(d)
      delivered = true
      if (!multicast) break
    }
    return delivered
  }

  async listen (options: { port: number, host?: string }, onConnection: (socket: StreamSocket) => void): Promise<TcpServer> {
    this.#assertAlive()
    const port = options.port === 0 ? this.#nextPort++ : options.port
    if (this.#servers.has(port)) throw new CanopyError('ADDRESS_IN_USE', `TCP port ${port} in use on ${this.name}`)
    this.#servers.set(port, onConnection)
    return { port, close: async () => { this.#servers.delete(port) } }
  }

  connect (host: string, port: number, timeoutMs: number): Promise<StreamSocket> {
    const net = this.network
    return new Promise((resolve, reject) => {
      if (!this.alive) { reject(new CanopyError('NET_UNREACHABLE', `${this.name} is down`)); return }
      const target = net.hostAt(host)
      const timeout = (): void => { reject(new CanopyError('TIMEOUT', `connect to ${host}:${port} took over ${timeoutMs} ms`)) }
      if (target === undefined || !net.reachable(this, target)) { net.clock.setTimeout(timeout, timeoutMs); return }
      const rtt = 2 * net.conditions.latencyMs
      if (rtt > timeoutMs) { net.clock.setTimeout(timeout, timeoutMs); return }
      net.clock.setTimeout(() => {
        const accept = target.#servers.get(port)
        if (!this.alive) { reject(new CanopyError('NET_UNREACHABLE', `${this.name} is down`)); return }
        if (!net.reachable(this, target)) { timeout(); return }
        if (accept === undefined) { reject(new CanopyError('NET_REFUSED', `connect to ${host}:${port}: refused`)); return }
        const localPort = this.#nextPort++
        const mine = new SimStream(this, host, port)
        const theirs = new SimStream(target, this.interfaceToward(host)?.address ?? this.address, localPort)
        mine.peer = theirs
        theirs.peer = mine
        net.stats.connections++
        accept(theirs)
        resolve(mine)
      }, rtt)
    })
  }

  /** Die without warning: sockets vanish, peers hear nothing (no FIN). */
  kill (): void {
    this.alive = false
    this.killed = true
    for (const s of [...this.udpSockets]) s.close()
    for (const s of [...this.streams]) s.destroy()
    this.#servers.clear()
  }

  #assertAlive (): void {
    if (!this.alive) throw new CanopyError('NET_UNREACHABLE', `${this.name} is down`)
  }
}
