// The agent's UDP socket for signed LAN datagrams. Outbound: messages are
// sealed once (one counter, one signature) and unicast to every peer of the
// PeerDirectory through a bounded send queue; only when the directory is
// empty do they go to the Canopy multicast group instead. Inbound, in order
// of cost: size, source address, fixed header (unknown versions and types
// are ignored and counted), own echo, replay window, rate gate, signature,
// then the CBOR body through the hardened door. Every drop has a reason and
// a counter; nothing a peer sends can throw out of here.
//
// Inbound datagrams are handled in the socket callback rather than queued for
// a later tick: each costs at most one signature check, the rate gate bounds
// those per second, and a tick (≥ 1 ms on Node) on every hop would eat into a
// protocol whose answers are due in tens of milliseconds.

import { join } from 'node:path'
import { CanopyError } from '../../errors'
import { TimerGroup, addressScope, lanNicFor, parseIp, type Datagram, type Hal, type Timer, type UdpSocket } from '../../hal'
import type { Identity } from '../../identity'
import {
  REPLAY_PERSIST_COUNT_MAX, REPLAY_PERSIST_MS, REPLAY_SENDERS_COUNT_MAX, WIRE_KEY_CACHE_COUNT_MAX, WIRE_SEND_BURST_COUNT_MAX,
  WIRE_SEND_QUEUE_COUNT_MAX, WIRE_SEND_TICK_MS, WIRE_SOURCE_BURST_MAX, WIRE_SOURCE_PER_SECOND_MAX, WIRE_SOURCES_COUNT_MAX, WIRE_VERIFY_BURST_MAX,
  WIRE_VERIFY_PER_SECOND_MAX
} from '../../limits'
import type { Logger } from '../../log'
import type { PeerDirectory, PeerInfo } from '../peers'
import { SendCounter } from '../wire/counter'
import { parseEnvelope, sealEnvelope, verifyEnvelope, type ParsedEnvelope } from '../wire/envelope'
import { decodeBody, encodeBody, MESSAGE_NAMES, type Body, type MessageName } from '../wire/messages'
import { ReplayTable } from '../wire/replay'
import { loadReplayMarks, saveReplayMarks } from '../wire/replay-store'
import { KeyCache } from './key-cache'
import { SourceGate } from './rate'

/** Administratively scoped (RFC 2365, IPv4 local scope 239.255/16); 67.80 = "CP". Used only while the peer list is empty. */
export const WIRE_MULTICAST_GROUP = '239.255.67.80'
export const COUNTER_FILE = 'wire-counter.json'
export const REPLAY_FILE = 'wire-replay.json'

export const DROP_REASONS = [
  'size', 'source', 'magic', 'unknown_version', 'unknown_type', 'malformed', 'self', 'key', 'replay', 'rate', 'signature',
  'handler', 'queue_full', 'counter', 'no_route', 'closed', 'too_large'
] as const
export type DropReason = (typeof DROP_REASONS)[number]

export interface Address { address: string, port: number }

export interface Inbound<N extends MessageName = MessageName> {
  name: N
  body: Body<N>
  sender: { nodeId: string, publicKey: Buffer }
  counter: number
  /** Where the datagram came from. */
  from: Address
  /** The sender's entry in the peer list, if it has one. */
  peer: PeerInfo | undefined
}

export interface WireStats {
  datagramsIn: number
  datagramsOut: number
  bytesIn: number
  bytesOut: number
  multicastOut: number
  inByType: Record<MessageName, number>
  outByType: Record<MessageName, number>
  dropped: Record<DropReason, number>
}

export interface WireTransportOptions {
  hal: Hal
  identity: Identity
  peers: PeerDirectory
  log: Logger
  port: number
  bindAddress?: string
  multicastGroup?: string
  /** Where the counter and replay files live (default: the HAL's data dir). */
  stateDir?: string
  /** Which source addresses may talk to us (default: loopback and the LAN interfaces' prefixes). */
  allowSource?: (address: string) => boolean
  /**
   * When the port is taken, bind an ephemeral one and say so in the log
   * rather than fail: peers learn the real port from /api/describe; only the
   * multicast fallback needs the configured one.
   */
  ephemeralIfTaken?: boolean
}

type Handler = (m: Inbound) => void
interface Outgoing { data: Buffer, to: Address, name: MessageName }

const zeroes = <K extends string>(keys: readonly K[]): Record<K, number> =>
  Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>

export class WireTransport {
  readonly name = 'wire'
  readonly stats: WireStats = {
    datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0, multicastOut: 0,
    inByType: zeroes(MESSAGE_NAMES), outByType: zeroes(MESSAGE_NAMES), dropped: zeroes(DROP_REASONS)
  }

  private socket: UdpSocket | null = null
  private counter: SendCounter | null = null
  private readonly handlers = new Map<MessageName, Set<Handler>>()
  private readonly keys = new KeyCache(WIRE_KEY_CACHE_COUNT_MAX)
  private readonly peerKeys = new Set<string>()
  private readonly replay = new ReplayTable(REPLAY_SENDERS_COUNT_MAX, (k) => this.peerKeys.has(k))
  private readonly gate: SourceGate
  private readonly timers: TimerGroup
  private readonly queue: Outgoing[] = []
  private burstLeft = WIRE_SEND_BURST_COUNT_MAX
  private tick: Timer | null = null
  private readonly joined = new Set<string>() // interface addresses in the multicast group
  private readonly unsubscribe: Array<() => void> = []
  private replayDirty = false
  private closed = false
  private readonly group: string
  private readonly stateDir: string

  constructor (private readonly o: WireTransportOptions) {
    this.gate = new SourceGate({
      perSecond: WIRE_VERIFY_PER_SECOND_MAX, burst: WIRE_VERIFY_BURST_MAX,
      sourcePerSecond: WIRE_SOURCE_PER_SECOND_MAX, sourceBurst: WIRE_SOURCE_BURST_MAX, sourcesMax: WIRE_SOURCES_COUNT_MAX
    }, o.hal.clock.nowMs())
    this.timers = new TimerGroup(o.hal.clock)
    this.group = o.multicastGroup ?? WIRE_MULTICAST_GROUP
    this.stateDir = o.stateDir ?? o.hal.dataDir
  }

  get nodeId (): string { return this.o.identity.nodeId }
  /** The bound UDP port (after start). */
  get port (): number { return this.socket?.port ?? 0 }
  get queued (): number { return this.queue.length }
  get bindAddress (): string { return this.o.bindAddress ?? '0.0.0.0' }

  async start (): Promise<void> {
    const { hal, log } = this.o
    this.counter = await SendCounter.open({ files: hal.files, path: join(this.stateDir, COUNTER_FILE), wallMs: () => hal.clock.wallMs(), log })
    this.replay.restore(await loadReplayMarks(hal.files, join(this.stateDir, REPLAY_FILE), log))
    const socket = await this.bind()
    this.socket = socket
    for (const p of this.o.peers.list()) this.peerKeys.add(p.publicKey.toString('hex'))
    this.unsubscribe.push(this.o.peers.on((e) => {
      const hex = e.peer.publicKey.toString('hex')
      if (e.type === 'removed') this.peerKeys.delete(hex)
      else this.peerKeys.add(hex)
    }))
    socket.onMessage((d) => { this.receive(d) })
    try { socket.setMulticastTtl(1) } catch { /* not every twin can */ }
    this.joinGroups()
    this.unsubscribe.push(hal.nics.on(() => { this.joinGroups() }))
    this.timers.setInterval(() => { void this.persistReplay() }, REPLAY_PERSIST_MS)
    log.info('wire transport up', { port: socket.port, multicastGroup: this.group, counterFrom: this.counter.peek })
  }

  private async bind (): Promise<UdpSocket> {
    const address = this.o.bindAddress ?? '0.0.0.0'
    try {
      return await this.o.hal.net.udp({ port: this.o.port, address })
    } catch (err) {
      if (!CanopyError.is(err, 'ADDRESS_IN_USE') || this.o.ephemeralIfTaken !== true || this.o.port === 0) throw err
      const s = await this.o.hal.net.udp({ port: 0, address })
      this.o.log.warn('UDP port taken; using an ephemeral one (peers learn it from /api/describe; multicast fallback off)', { wanted: this.o.port, port: s.port })
      return s
    }
  }

  async stop (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.timers.clearAll()
    for (const u of this.unsubscribe.splice(0)) u()
    const s = this.socket
    if (s !== null) {
      for (const a of this.joined) s.leaveGroup(this.group, a)
      s.close()
    }
    this.joined.clear()
    this.stats.dropped.closed += this.queue.length
    this.queue.length = 0
    await this.persistReplay(true)
    await this.counter?.close()
  }

  /** Handle verified messages of one type; returns the unsubscribe function. */
  on<N extends MessageName> (name: N, handler: (m: Inbound<N>) => void): () => void {
    let set = this.handlers.get(name)
    if (set === undefined) { set = new Set(); this.handlers.set(name, set) }
    set.add(handler as Handler)
    return () => { set!.delete(handler as Handler) }
  }

  /** Send to one address. False when it was dropped (counted). */
  sendTo<N extends MessageName> (name: N, body: Body<N>, to: Address): boolean {
    const data = this.seal(name, body)
    return data !== null && this.enqueue({ data, to, name })
  }

  /** Send to a node: at its peer-list address, else at `fallback` (a datagram's source). */
  sendToNode<N extends MessageName> (nodeId: string, name: N, body: Body<N>, fallback?: Address): boolean {
    const peer = this.o.peers.get(nodeId)
    const to = peer !== undefined ? { address: peer.address, port: peer.udpPort } : fallback
    if (to === undefined) { this.stats.dropped.no_route++; return false }
    return this.sendTo(name, body, to)
  }

  /** Answer the sender of a message. */
  reply<N extends MessageName> (m: Inbound, name: N, body: Body<N>): boolean {
    return this.sendToNode(m.sender.nodeId, name, body, m.from)
  }

  /**
   * To every peer in the directory (one seal, many unicasts), except those
   * named; to the multicast group only when the directory holds no peer at all.
   */
  broadcast<N extends MessageName> (name: N, body: Body<N>, options: { except?: ReadonlySet<string> } = {}): { sent: string[], multicast: boolean } {
    const peers = this.o.peers.list().filter((p) => p.nodeId !== this.nodeId)
    if (peers.length === 0) return { sent: [], multicast: this.multicast(name, body) }
    const targets = peers.filter((p) => options.except?.has(p.nodeId) !== true)
    if (targets.length === 0) return { sent: [], multicast: false }
    const data = this.seal(name, body)
    if (data === null) return { sent: [], multicast: false }
    const sent: string[] = []
    for (const p of targets) if (this.enqueue({ data, to: { address: p.address, port: p.udpPort }, name })) sent.push(p.nodeId)
    return { sent, multicast: false }
  }

  status (): Record<string, unknown> {
    return {
      port: this.port,
      multicastGroup: this.group,
      multicastInterfaces: [...this.joined],
      datagramsIn: this.stats.datagramsIn,
      datagramsOut: this.stats.datagramsOut,
      dropped: Object.fromEntries(Object.entries(this.stats.dropped).filter(([, v]) => v > 0)),
      sendQueue: this.queue.length,
      sendersTracked: this.replay.size,
      replayEvictions: this.replay.evictions,
      counter: this.counter === null ? null : { next: this.counter.peek, reservedTo: this.counter.reserved }
    }
  }

  // ---- outbound ----------------------------------------------------------------

  private seal<N extends MessageName> (name: N, body: Body<N>): Buffer | null {
    if (this.closed || this.counter === null) { this.stats.dropped.closed++; return null }
    let encoded: Buffer
    try {
      encoded = encodeBody(name, body)
    } catch (err) {
      // Our own bug (a caller let a body grow past a datagram): never worth a crash inside a timer.
      this.stats.dropped.too_large++
      this.o.log.error('message not sent', { type: name, err })
      return null
    }
    const counter = this.counter.next()
    if (counter === null) { this.stats.dropped.counter++; return null }
    return sealEnvelope(name, this.o.identity.publicKey, this.o.identity.privateKey, counter, encoded)
  }

  private enqueue (out: Outgoing): boolean {
    if (this.queue.length >= WIRE_SEND_QUEUE_COUNT_MAX) { this.stats.dropped.queue_full++; return false }
    this.queue.push(out)
    this.pump()
    return true
  }

  /** Send up to a burst now; the rest leaves on later ticks (paced, kind to Wi-Fi). */
  private pump (): void {
    const s = this.socket
    while (s !== null && this.queue.length > 0 && this.burstLeft > 0) {
      const out = this.queue.shift()!
      this.burstLeft--
      s.send(out.data, out.to.port, out.to.address)
      this.counted(out)
    }
    if (this.tick === null && !this.closed && (this.queue.length > 0 || this.burstLeft < WIRE_SEND_BURST_COUNT_MAX)) {
      this.tick = this.timers.setTimeout(() => {
        this.tick = null
        this.burstLeft = WIRE_SEND_BURST_COUNT_MAX
        this.pump()
      }, WIRE_SEND_TICK_MS)
    }
  }

  private counted (out: Outgoing): void {
    this.stats.datagramsOut++
    this.stats.bytesOut += out.data.length
    this.stats.outByType[out.name]++
  }

  private multicast<N extends MessageName> (name: N, body: Body<N>): boolean {
    const s = this.socket
    if (s === null || this.joined.size === 0) { this.stats.dropped.no_route++; return false }
    const data = this.seal(name, body)
    if (data === null) return false
    for (const a of this.joined) {
      try {
        s.setMulticastInterface(a)
        s.send(data, this.o.port === 0 ? s.port : this.o.port, this.group)
        this.counted({ data, to: { address: this.group, port: s.port }, name })
        this.stats.multicastOut++
      } catch (err) {
        this.o.log.debug('multicast send failed', { interface: a, err })
      }
    }
    return true
  }

  /** Join the group on every LAN interface that is up (IPv4), leave it where they went. */
  private joinGroups (): void {
    const s = this.socket
    if (s === null || this.closed) return
    const want = new Set<string>()
    for (const nic of this.o.hal.nics.list()) {
      if (nic.role !== 'lan' || !nic.up || !nic.multicast) continue
      for (const a of nic.addresses) if (a.family === 4) want.add(a.address)
    }
    for (const a of this.joined) {
      if (!want.has(a)) { s.leaveGroup(this.group, a); this.joined.delete(a) }
    }
    for (const a of want) {
      if (this.joined.has(a)) continue
      try {
        s.joinGroup(this.group, a)
        this.joined.add(a)
      } catch (err) {
        this.o.log.debug('cannot join the multicast group', { interface: a, err })
      }
    }
  }

  // ---- inbound -----------------------------------------------------------------

  private allowed (address: string): boolean {
    if (this.o.allowSource !== undefined) return this.o.allowSource(address)
    const ip = parseIp(address)
    if (ip === null) return false
    return addressScope(ip) === 'loopback' || lanNicFor(this.o.hal.nics.list(), ip) !== undefined
  }

  private drop (reason: DropReason): void { this.stats.dropped[reason]++ }

  private receive (d: Datagram): void {
    this.stats.datagramsIn++
    this.stats.bytesIn += d.data.length
    if (this.closed) return this.drop('closed')
    if (!this.allowed(d.address)) return this.drop('source')
    let p: ParsedEnvelope
    try {
      p = parseEnvelope(d.data)
    } catch (err) {
      const reason = CanopyError.is(err) ? String(err.detail?.reason) : ''
      return this.drop(reason === 'size' ? 'size' : reason === 'magic' ? 'magic' : reason === 'version' ? 'unknown_version' : reason === 'type' ? 'unknown_type' : 'malformed')
    }
    if (p.senderKey.equals(this.o.identity.publicKey)) return this.drop('self')
    const known = this.keys.get(p.senderKey)
    if (known === null) return this.drop('key')
    if (!this.replay.check(known.hex, p.counter)) return this.drop('replay')
    if (!this.gate.admit(d.address, this.o.hal.clock.nowMs())) return this.drop('rate')
    if (!verifyEnvelope(p, known.key)) return this.drop('signature')
    this.replay.commit(known.hex, p.counter)
    this.replayDirty = true
    let body: unknown
    try {
      body = decodeBody(p.name, p.body)
    } catch {
      return this.drop('malformed')
    }
    this.stats.inByType[p.name]++
    const m: Inbound = {
      name: p.name,
      body: body as Body<MessageName>,
      sender: { nodeId: known.nodeId, publicKey: known.raw },
      counter: p.counter,
      from: { address: d.address, port: d.port },
      peer: this.o.peers.get(known.nodeId)
    }
    for (const h of this.handlers.get(p.name) ?? []) {
      try {
        h(m)
      } catch (err) {
        this.drop('handler')
        this.o.log.error('wire handler failed', { type: p.name, err })
      }
    }
  }

  private async persistReplay (force = false): Promise<void> {
    if (!this.replayDirty && !force) return
    if (this.replay.size === 0) return
    this.replayDirty = false
    try {
      await saveReplayMarks(this.o.hal.files, join(this.stateDir, REPLAY_FILE), this.replay.marks(REPLAY_PERSIST_COUNT_MAX))
    } catch (err) {
      this.replayDirty = true
      this.o.log.warn('cannot save replay marks', { err })
    }
  }
}
