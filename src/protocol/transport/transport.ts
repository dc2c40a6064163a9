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

import type { KeyObject } from 'node:crypto'
import { join } from 'node:path'
import { publicKeyFromRaw } from '../../crypto'
import { CanopyError } from '../../errors'
import { TimerGroup, addressScope, lanNicFor, parseIp, type Datagram, type Hal, type Timer, type UdpSocket } from '../../hal'
import { nodeIdOf, type Identity } from '../../identity'
import {
  REPLAY_PERSIST_COUNT_MAX, REPLAY_PERSIST_MS, REPLAY_SENDERS_COUNT_MAX, WIRE_KEY_CACHE_COUNT_MAX, WIRE_SEND_BURST_COUNT_MAX,
  WIRE_SEND_QUEUE_COUNT_MAX, WIRE_SEND_TICK_MS, WIRE_SOURCE_BURST_MAX, WIRE_SOURCE_PER_SECOND_MAX, WIRE_SOURCES_COUNT_MAX, WIRE_VERIFY_BURST_MAX,
  WIRE_VERIFY_PER_SECOND_MAX
} from '../../limits'
import type { Logger } from '../../log'
import type { PeerDirectory, PeerInfo } from '../peers'
import { RateGate } from '../rate'
import { nonZero, zeroes } from '../counts'
import { lruSet } from '../lru'
import { SendCounter } from '../wire/counter'
import { parseEnvelope, sealEnvelope, verifyEnvelope, type ParsedEnvelope } from '../wire/envelope'
import { decodeBody, encodeBody, MESSAGE_NAMES, type Body, type MessageName } from '../wire/messages'
import { ReplayTable } from '../wire/replay'
import { loadReplayMarks, saveReplayMarks } from '../wire/replay-store'

/** Administratively scoped (RFC 2365, IPv4 local scope 239.255/16); 67.80 = "CP". Used only while the peer list is empty. */
export const WIRE_MULTICAST_GROUP = '239.255.67.80'
export const COUNTER_FILE = 'wire-counter.json'
export const REPLAY_FILE = 'wire-replay.json'

export const DROP_REASONS = [
  'size', 'source', 'magic', 'unknown_version', 'unknown_type', 'malformed', 'self', 'key', 'replay', 'rate', 'signature',
  'handler', 'queue_full', 'counter', 'no_route', 'closed', 'too_large'
] as const
export type DropReason = (typeof DROP_REASONS)[number]

/** A layout failure's reason (parseEnvelope) as a drop reason: newer versions and types are ignored, not malformed. */
const LAYOUT_DROPS: Record<string, DropReason> = { size: 'size', magic: 'magic', version: 'unknown_version', type: 'unknown_type' }

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
/** A sealed datagram waiting to leave: bytes, port, address, type. */
type Outgoing = [Buffer, number, string, MessageName]
/** A sender's parsed key (a KeyObject costs a DER parse and the node id a SHA-256: too much for every datagram). */
interface KnownKey { hex: string, raw: Buffer, key: KeyObject, nodeId: string }

export class WireTransport {
  readonly name = 'wire'
  readonly stats: WireStats = {
    datagramsIn: 0, datagramsOut: 0, multicastOut: 0,
    inByType: zeroes(MESSAGE_NAMES), outByType: zeroes(MESSAGE_NAMES), dropped: zeroes(DROP_REASONS)
  }

  #socket: UdpSocket | null = null
  #counter: SendCounter | null = null
  readonly #handlers = new Map<MessageName, Set<Handler>>()
  /** Parsed keys by hex, least recently used first out. */
  readonly #keys = new Map<string, KnownKey>()
  /** Replay windows; at the bound, those of the peer list's members are kept. */
  readonly #replay = new ReplayTable(REPLAY_SENDERS_COUNT_MAX, (hex) => {
    const nodeId = this.#keys.get(hex)?.nodeId ?? nodeIdOf(Buffer.from(hex, 'hex'))
    return this.o.peers.get(nodeId)?.publicKey.toString('hex') === hex
  })
  readonly #gate: RateGate
  readonly #timers: TimerGroup
  readonly #queue: Outgoing[] = []
  #burstLeft = WIRE_SEND_BURST_COUNT_MAX
  #tick: Timer | null = null
  /** Interface addresses in the multicast group. */
  readonly #joined = new Set<string>()
  #off: (() => void) | undefined
  #replayDirty = false
  #closed = false
  readonly #group: string
  readonly #replayPath: string

  constructor (private readonly o: WireTransportOptions) {
    this.#gate = new RateGate(o.hal.clock.nowMs(), {
      totalPerSecond: WIRE_VERIFY_PER_SECOND_MAX, totalBurst: WIRE_VERIFY_BURST_MAX,
      sourcePerSecond: WIRE_SOURCE_PER_SECOND_MAX, sourceBurst: WIRE_SOURCE_BURST_MAX, sourcesMax: WIRE_SOURCES_COUNT_MAX
    })
    this.#timers = new TimerGroup(o.hal.clock)
    this.#group = o.multicastGroup ?? WIRE_MULTICAST_GROUP
    this.#replayPath = join(o.stateDir ?? o.hal.dataDir, REPLAY_FILE)
  }

  get nodeId (): string { return this.o.identity.nodeId }
  /** The bound UDP port (after start). */
  get port (): number { return this.#socket?.port ?? 0 }
  get queued (): number { return this.#queue.length }
  get bindAddress (): string { return this.o.bindAddress ?? '0.0.0.0' }

  async start (): Promise<void> {
    const { hal, log, port } = this.o
    this.#counter = await SendCounter.open({ files: hal.files, path: join(this.o.stateDir ?? hal.dataDir, COUNTER_FILE), wallMs: () => hal.clock.wallMs(), log })
    this.#replay.restore(await loadReplayMarks(hal.files, this.#replayPath, log))
    const address = this.bindAddress
    let s: UdpSocket
    try {
      s = await hal.net.udp({ port, address })
    } catch (err) {
      if (!CanopyError.is(err, 'ADDRESS_IN_USE') || this.o.ephemeralIfTaken !== true || port === 0) throw err
      s = await hal.net.udp({ port: 0, address })
      log.warn('UDP port taken; using an ephemeral one', { wanted: port, port: s.port })
    }
    this.#socket = s
    this.#off = hal.nics.on(() => { this.#joinGroups() })
    s.onMessage((d) => { this.#receive(d) })
    try { s.setMulticastTtl(1) } catch { /* not every twin can */ }
    this.#joinGroups()
    this.#timers.setInterval(() => { void this.#persistReplay() }, REPLAY_PERSIST_MS)
    log.info('wire transport up', { port: s.port })
  }

  async stop (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#timers.clearAll()
    this.#off?.()
    const s = this.#socket
    if (s !== null) {
      for (const a of this.#joined) s.leaveGroup(this.#group, a)
      s.close()
    }
    this.#joined.clear()
    this.stats.dropped.closed += this.#queue.length
    this.#queue.length = 0
    await this.#persistReplay(true)
    await this.#counter?.close()
  }

  /** Handle verified messages of one type; returns the unsubscribe function. */
  on<N extends MessageName> (name: N, handler: (m: Inbound<N>) => void): () => void {
    const set = this.#handlers.get(name) ?? new Set()
    this.#handlers.set(name, set.add(handler as Handler))
    return () => { set.delete(handler as Handler) }
  }

  /** Send to one address. False when it was dropped (counted). */
  sendTo<N extends MessageName> (name: N, body: Body<N>, to: Address): boolean {
    const data = this.#seal(name, body)
    return data !== false && this.#enqueue([data, to.port, to.address, name])
  }

  /** Send to a node: at its peer-list address, else at `fallback` (a datagram's source). */
  sendToNode<N extends MessageName> (nodeId: string, name: N, body: Body<N>, fallback?: Address): boolean {
    const peer = this.o.peers.get(nodeId)
    const to = peer !== undefined ? { address: peer.address, port: peer.udpPort } : fallback
    if (to === undefined) return this.#drop('no_route')
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
    const sent: string[] = []
    if (peers.length === 0) return { sent, multicast: this.#multicast(name, body) }
    const targets = peers.filter((p) => options.except?.has(p.nodeId) !== true)
    const data = targets.length > 0 && this.#seal(name, body)
    if (data !== false) for (const p of targets) if (this.#enqueue([data, p.udpPort, p.address, name])) sent.push(p.nodeId)
    return { sent, multicast: false }
  }

  status (): Record<string, unknown> {
    const s = this.stats
    const c = this.#counter
    return {
      port: this.port,
      multicastInterfaces: [...this.#joined],
      ...s,
      dropped: nonZero(s.dropped),
      sendQueue: this.#queue.length,
      sendersTracked: this.#replay.size,
      counter: c === null ? null : { next: c.peek, reservedTo: c.reserved }
    }
  }

  /** Count a drop; false, for the callers that return it. */
  #drop (reason: DropReason): false {
    this.stats.dropped[reason]++
    return false
  }

  // ---- outbound ----------------------------------------------------------------

  /** The sealed datagram, or false when it was dropped (counted). */
  #seal<N extends MessageName> (name: N, body: Body<N>): Buffer | false {
    if (this.#closed || this.#counter === null) return this.#drop('closed')
    let encoded: Buffer
    try {
      encoded = encodeBody(name, body)
    } catch (err) {
      // Our own bug (a caller let a body grow past a datagram): never worth a crash inside a timer.
      this.o.log.error('message not sent', { type: name, err })
      return this.#drop('too_large')
    }
    const counter = this.#counter.next()
    if (counter === null) return this.#drop('counter')
    return sealEnvelope(name, this.o.identity.publicKey, this.o.identity.privateKey, counter, encoded)
  }

  #enqueue (out: Outgoing): boolean {
    if (this.#queue.length >= WIRE_SEND_QUEUE_COUNT_MAX) return this.#drop('queue_full')
    this.#queue.push(out)
    this.#pump()
    return true
  }

  /** Send up to a burst now; the rest leaves on later ticks (paced, kind to Wi-Fi). */
  #pump (): void {
    const s = this.#socket
    while (s !== null && this.#queue.length > 0 && this.#burstLeft > 0) {
      const [data, port, address, name] = this.#queue.shift()!
      this.#burstLeft--
      s.send(data, port, address)
      this.#counted(name)
    }
    if (this.#tick === null && !this.#closed && (this.#queue.length > 0 || this.#burstLeft < WIRE_SEND_BURST_COUNT_MAX)) {
      this.#tick = this.#timers.setTimeout(() => {
        this.#tick = null
        this.#burstLeft = WIRE_SEND_BURST_COUNT_MAX
        this.#pump()
      }, WIRE_SEND_TICK_MS)
    }
  }

  #counted (name: MessageName): void {
    this.stats.datagramsOut++
    this.stats.outByType[name]++
  }

  #multicast<N extends MessageName> (name: N, body: Body<N>): boolean {
    const s = this.#socket
    if (s === null || this.#joined.size === 0) return this.#drop('no_route')
    const data = this.#seal(name, body)
    if (data === false) return false
    for (const a of this.#joined) {
      try {
        s.setMulticastInterface(a)
        s.send(data, this.o.port || s.port, this.#group)
        this.#counted(name)
        this.stats.multicastOut++
      } catch (err) {
        this.o.log.debug('multicast send failed', { interface: a, err })
      }
    }
    return true
  }

  /** Join the group on every LAN interface that is up (IPv4), leave it where they went. */
  #joinGroups (): void {
    const s = this.#socket
    if (s === null || this.#closed) return
    const want = new Set<string>()
    for (const nic of this.o.hal.nics.list()) {
      if (nic.role === 'lan' && nic.up && nic.multicast) for (const a of nic.addresses) if (a.family === 4) want.add(a.address)
    }
    for (const a of this.#joined) {
      if (!want.has(a)) { s.leaveGroup(this.#group, a); this.#joined.delete(a) }
    }
    for (const a of want) {
      if (this.#joined.has(a)) continue
      try {
        s.joinGroup(this.#group, a)
        this.#joined.add(a)
      } catch (err) {
        this.o.log.debug('multicast join failed', { interface: a, err })
      }
    }
  }

  // ---- inbound -----------------------------------------------------------------

  #allowed (address: string): boolean {
    if (this.o.allowSource !== undefined) return this.o.allowSource(address)
    const ip = parseIp(address)
    return ip !== null && (addressScope(ip) === 'loopback' || lanNicFor(this.o.hal.nics.list(), ip) !== undefined)
  }

  /** The sender's key, parsed once; null when the bytes are not a usable ed25519 key. */
  #key (raw: Buffer): KnownKey | null {
    const hex = raw.toString('hex')
    let known = this.#keys.get(hex)
    if (known === undefined) {
      let key: KeyObject
      try {
        key = publicKeyFromRaw(raw)
      } catch {
        return null
      }
      const copy = Buffer.from(raw)
      known = { hex, raw: copy, key, nodeId: nodeIdOf(copy) }
    }
    return lruSet(this.#keys, hex, known, WIRE_KEY_CACHE_COUNT_MAX)
  }

  #receive (d: Datagram): void {
    const { stats } = this
    stats.datagramsIn++
    if (this.#closed) return void this.#drop('closed')
    if (!this.#allowed(d.address)) return void this.#drop('source')
    let p: ParsedEnvelope
    try {
      p = parseEnvelope(d.data)
    } catch (err) {
      return void this.#drop(LAYOUT_DROPS[String((err as CanopyError).detail?.reason)] ?? 'malformed')
    }
    if (p.senderKey.equals(this.o.identity.publicKey)) return void this.#drop('self')
    const known = this.#key(p.senderKey)
    if (known === null) return void this.#drop('key')
    if (!this.#replay.check(known.hex, p.counter)) return void this.#drop('replay')
    if (!this.#gate.allow(d.address, this.o.hal.clock.nowMs())) return void this.#drop('rate')
    if (!verifyEnvelope(p, known.key)) return void this.#drop('signature')
    this.#replay.commit(known.hex, p.counter)
    this.#replayDirty = true
    let body: Body<MessageName>
    try {
      body = decodeBody(p.name, p.body)
    } catch {
      return void this.#drop('malformed')
    }
    stats.inByType[p.name]++
    const m: Inbound = {
      name: p.name,
      body,
      sender: { nodeId: known.nodeId, publicKey: known.raw },
      counter: p.counter,
      from: { address: d.address, port: d.port },
      peer: this.o.peers.get(known.nodeId)
    }
    for (const h of this.#handlers.get(p.name) ?? []) {
      try {
        h(m)
      } catch (err) {
        this.#drop('handler')
        this.o.log.error('wire handler failed', { type: p.name, err })
      }
    }
  }

  async #persistReplay (force = false): Promise<void> {
    if ((!this.#replayDirty && !force) || this.#replay.size === 0) return
    this.#replayDirty = false
    try {
      await saveReplayMarks(this.o.hal.files, this.#replayPath, this.#replay.marks(REPLAY_PERSIST_COUNT_MAX))
    } catch (err) {
      this.#replayDirty = true
      this.o.log.warn('replay marks not saved', { err })
    }
  }
}
