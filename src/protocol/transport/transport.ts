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
import { rateGate } from '../rate'
import { nonZero, zeroes } from '../counts'
import { lruSet } from '../lru'
import { SendCounter } from '../wire/counter'
import { parseEnvelope, sealEnvelope, verifyEnvelope, type ParsedEnvelope } from '../wire/envelope'
import { decodeBody, encodeBody, MESSAGE_NAMES, type Body, type MessageName } from '../wire/messages'
import { replayTable } from '../wire/replay'
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
/** A sender's parsed key `k` and node id `id` (a KeyObject costs a DER parse and the node id a SHA-256: too much for every datagram). */
interface KnownKey { hex: string, raw: Buffer, k: KeyObject, id: string }

export interface WireTransport {
  readonly name: 'wire'
  readonly stats: WireStats
  readonly nodeId: string
  /** The bound UDP port (after start). */
  readonly port: number
  readonly queued: number
  readonly bindAddress: string
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Handle verified messages of one type; returns the unsubscribe function. */
  on: <N extends MessageName>(name: N, handler: (m: Inbound<N>) => void) => () => void
  /** Send to one address. False when it was dropped (counted). */
  sendTo: <N extends MessageName>(name: N, body: Body<N>, to: Address) => boolean
  /** Send to a node: at its peer-list address, else at `fallback` (a datagram's source). */
  sendToNode: <N extends MessageName>(nodeId: string, name: N, body: Body<N>, fallback?: Address) => boolean
  /** Answer the sender of a message. */
  reply: <N extends MessageName>(m: Inbound, name: N, body: Body<N>) => boolean
  /**
   * To every peer in the directory (one seal, many unicasts), except those
   * named; to the multicast group only when the directory holds no peer at all.
   */
  broadcast: <N extends MessageName>(name: N, body: Body<N>, options?: { except?: ReadonlySet<string> }) => { sent: string[], multicast: boolean }
  status: () => Record<string, unknown>
}

/** The transport as a closure over local variables (a class's `this.#x` costs bytes in the bundle on every use). */
export function createWireTransport (o: WireTransportOptions): WireTransport {
  const { hal, identity, peers, log } = o
  const clock = hal.clock
  const stats: WireStats = {
    datagramsIn: 0, datagramsOut: 0, multicastOut: 0,
    inByType: zeroes(MESSAGE_NAMES), outByType: zeroes(MESSAGE_NAMES), dropped: zeroes(DROP_REASONS)
  }
  let socket: UdpSocket | null = null
  let counter: SendCounter | null = null
  const handlers = new Map<MessageName, Set<Handler>>()
  /** Parsed keys by hex, least recently used first out. */
  const keys = new Map<string, KnownKey>()
  /** Replay windows; at the bound, those of the peer list's members are kept. */
  const replay = replayTable(REPLAY_SENDERS_COUNT_MAX, (hex) => {
    const nodeId = keys.get(hex)?.id ?? nodeIdOf(Buffer.from(hex, 'hex'))
    return peers.get(nodeId)?.publicKey.toString('hex') === hex
  })
  const gate = rateGate(clock.nowMs(), {
    totalPerSecond: WIRE_VERIFY_PER_SECOND_MAX, totalBurst: WIRE_VERIFY_BURST_MAX,
    sourcePerSecond: WIRE_SOURCE_PER_SECOND_MAX, sourceBurst: WIRE_SOURCE_BURST_MAX, sourcesMax: WIRE_SOURCES_COUNT_MAX
  })
  const timers = new TimerGroup(clock)
  const queue: Outgoing[] = []
  let burstLeft = WIRE_SEND_BURST_COUNT_MAX
  let tick: Timer | null = null
  /** Interface addresses in the multicast group. */
  const joined = new Set<string>()
  let off: (() => void) | undefined
  let replayDirty = false
  let closed = false
  const group = o.multicastGroup ?? WIRE_MULTICAST_GROUP
  const stateDir = o.stateDir ?? hal.dataDir
  const replayPath = join(stateDir, REPLAY_FILE)
  const bindAddress = o.bindAddress ?? '0.0.0.0'

  /** Count a drop; false, for the callers that return it. */
  const drop = (reason: DropReason): false => {
    stats.dropped[reason]++
    return false
  }

  // ---- outbound ----------------------------------------------------------------

  /** The sealed datagram, or false when it was dropped (counted). */
  const seal = <N extends MessageName>(name: N, body: Body<N>): Buffer | false => {
    if (closed || !counter) return drop('closed')
    let encoded: Buffer
    try {
      encoded = encodeBody(name, body)
    } catch (err) {
      // Our own bug (a caller let a body grow past a datagram): never worth a crash inside a timer.
      log.error('message not sent', { type: name, err })
      return drop('too_large')
    }
    const n = counter.next()
    if (n === null) return drop('counter')
    return sealEnvelope(name, identity.publicKey, identity.privateKey, n, encoded)
  }

  const enqueue = (out: Outgoing): boolean => {
    if (queue.length >= WIRE_SEND_QUEUE_COUNT_MAX) return drop('queue_full')
    queue.push(out)
    pump()
    return true
  }

  /** Send up to a burst now; the rest leaves on later ticks (paced, kind to Wi-Fi). */
  const pump = (): void => {
    while (socket && queue.length > 0 && burstLeft > 0) {
      const [data, port, address, name] = queue.shift()!
      burstLeft--
      socket.send(data, port, address)
      counted(name)
    }
    if (!tick && !closed && (queue.length > 0 || burstLeft < WIRE_SEND_BURST_COUNT_MAX)) {
      tick = timers.setTimeout(() => {
        tick = null
        burstLeft = WIRE_SEND_BURST_COUNT_MAX
        pump()
      }, WIRE_SEND_TICK_MS)
    }
  }

  const counted = (name: MessageName): void => {
    stats.datagramsOut++
    stats.outByType[name]++
  }

  const multicast = <N extends MessageName>(name: N, body: Body<N>): boolean => {
    const s = socket
    if (!s || joined.size === 0) return drop('no_route')
    const data = seal(name, body)
    if (data === false) return false
    for (const a of joined) {
      try {
        s.setMulticastInterface(a)
        s.send(data, o.port || s.port, group)
        counted(name)
        stats.multicastOut++
      } catch (err) {
        log.debug('multicast send failed', { interface: a, err })
      }
    }
    return true
  }

  /** Join the group on every LAN interface that is up (IPv4), leave it where they went. */
  const joinGroups = (): void => {
    const s = socket
    if (!s || closed) return
    const want = new Set<string>()
    for (const nic of hal.nics.list()) {
      if (nic.role === 'lan' && nic.up && nic.multicast) for (const a of nic.addresses) if (a.family === 4) want.add(a.address)
    }
    for (const a of joined) {
      if (!want.has(a)) { s.leaveGroup(group, a); joined.delete(a) }
    }
    for (const a of want) {
      if (joined.has(a)) continue
      try {
        s.joinGroup(group, a)
        joined.add(a)
      } catch (err) {
        log.debug('multicast join failed', { interface: a, err })
      }
    }
  }

  // ---- inbound -----------------------------------------------------------------

  const allowed = (address: string): boolean => {
    if (o.allowSource) return o.allowSource(address)
    const ip = parseIp(address)
    return !!ip && (addressScope(ip) === 'loopback' || !!lanNicFor(hal.nics.list(), ip))
  }

  /** The sender's key, parsed once; null when the bytes are not a usable ed25519 key. */
  const keyOf = (raw: Buffer): KnownKey | null => {
    const hex = raw.toString('hex')
    let known = keys.get(hex)
    if (!known) {
      let key: KeyObject
      try {
        key = publicKeyFromRaw(raw)
      } catch {
        return null
      }
      const copy = Buffer.from(raw)
      known = { hex, raw: copy, k: key, id: nodeIdOf(copy) }
    }
    return lruSet(keys, hex, known, WIRE_KEY_CACHE_COUNT_MAX)
  }

  /** Handle one datagram; false when it was dropped (counted). */
  const receive = (d: Datagram): false | void => {
    stats.datagramsIn++
    if (closed) return drop('closed')
    if (!allowed(d.address)) return drop('source')
    let p: ParsedEnvelope
    try {
      p = parseEnvelope(d.data)
    } catch (err) {
      return drop(LAYOUT_DROPS[String((err as CanopyError).detail?.reason)] ?? 'malformed')
    }
    if (p.senderKey.equals(identity.publicKey)) return drop('self')
    const known = keyOf(p.senderKey)
    if (!known) return drop('key')
    if (!replay.check(known.hex, p.counter)) return drop('replay')
    if (!gate.allow(d.address, clock.nowMs())) return drop('rate')
    if (!verifyEnvelope(p, known.k)) return drop('signature')
    replay.commit(known.hex, p.counter)
    replayDirty = true
    let body: Body<MessageName>
    try {
      body = decodeBody(p.name, p.body)
    } catch {
      return drop('malformed')
    }
    stats.inByType[p.name]++
    const m: Inbound = {
      name: p.name,
      body,
      sender: { nodeId: known.id, publicKey: known.raw },
      counter: p.counter,
      from: { address: d.address, port: d.port },
      peer: peers.get(known.id)
    }
    for (const h of handlers.get(p.name) ?? []) {
      try {
        h(m)
      } catch (err) {
        drop('handler')
        log.error('wire handler failed', { type: p.name, err })
      }
    }
  }

  const persistReplay = async (force = false): Promise<void> => {
    if ((!replayDirty && !force) || replay.size === 0) return
    replayDirty = false
    try {
      await saveReplayMarks(hal.files, replayPath, replay.marks(REPLAY_PERSIST_COUNT_MAX))
    } catch (err) {
      replayDirty = true
      log.warn('replay marks not saved', { err })
    }
  }

  const sendTo = <N extends MessageName>(name: N, body: Body<N>, to: Address): boolean => {
    const data = seal(name, body)
    return data !== false && enqueue([data, to.port, to.address, name])
  }

  const sendToNode = <N extends MessageName>(nodeId: string, name: N, body: Body<N>, fallback?: Address): boolean => {
    const peer = peers.get(nodeId)
    const to = peer ? { address: peer.address, port: peer.udpPort } : fallback
    return to ? sendTo(name, body, to) : drop('no_route')
  }

  return {
    name: 'wire',
    stats,
    nodeId: identity.nodeId,
    get port () { return socket?.port ?? 0 },
    get queued () { return queue.length },
    bindAddress,

    async start () {
      const { port } = o
      counter = await SendCounter.open({ files: hal.files, path: join(stateDir, COUNTER_FILE), wallMs: () => clock.wallMs(), log })
      replay.restore(await loadReplayMarks(hal.files, replayPath, log))
      let s: UdpSocket
      try {
        s = await hal.net.udp({ port, address: bindAddress })
      } catch (err) {
        if (!CanopyError.is(err, 'ADDRESS_IN_USE') || o.ephemeralIfTaken !== true || port === 0) throw err
        s = await hal.net.udp({ port: 0, address: bindAddress })
        log.warn('UDP port taken; using an ephemeral one', { wanted: port, port: s.port })
      }
      socket = s
      off = hal.nics.on(joinGroups)
      s.onMessage(receive)
      try { s.setMulticastTtl(1) } catch { /* not every twin can */ }
      joinGroups()
      timers.setInterval(() => { void persistReplay() }, REPLAY_PERSIST_MS)
      log.info('wire transport up', { port: s.port })
    },

    async stop () {
      if (closed) return
      closed = true
      timers.clearAll()
      off?.()
      const s = socket
      if (s) {
        for (const a of joined) s.leaveGroup(group, a)
        s.close()
      }
      joined.clear()
      stats.dropped.closed += queue.length
      queue.length = 0
      await persistReplay(true)
      await counter?.close()
    },

    on (name, handler) {
      const set = handlers.get(name) ?? new Set()
      handlers.set(name, set.add(handler as Handler))
      return () => { set.delete(handler as Handler) }
    },

    sendTo,
    sendToNode,
    reply: (m, name, body) => sendToNode(m.sender.nodeId, name, body, m.from),

    broadcast (name, body, options = {}) {
      const list = peers.list().filter((p) => p.nodeId !== identity.nodeId)
      const sent: string[] = []
      if (list.length === 0) return { sent, multicast: multicast(name, body) }
      const targets = list.filter((p) => options.except?.has(p.nodeId) !== true)
      const data = targets.length > 0 && seal(name, body)
      if (data !== false) for (const p of targets) if (enqueue([data, p.udpPort, p.address, name])) sent.push(p.nodeId)
      return { sent, multicast: false }
    },

    status: () => ({
      port: socket?.port ?? 0,
      multicastInterfaces: [...joined],
      ...stats,
      dropped: nonZero(stats.dropped),
      sendQueue: queue.length,
      sendersTracked: replay.size,
      counter: counter && { next: counter.peek, reservedTo: counter.reserved }
    })
  }
}
