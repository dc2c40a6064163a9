// A message-level network for the 1 000-node stream simulation. Copying
// real 8 Mbit/s payloads between a thousand nodes cannot run in one process
// in reasonable time, so this carries the real stream frames (encoded by the
// real codec, decoded by the real Streams) with small payloads, and charges
// each frame what it stands for: a CHUNK frame costs chunkMediaBytes, every
// other frame its own length.
//
// The model, per node: one uplink, a FIFO at uplinkBytesPerSec shared by all
// its connections; per connection: in-order delivery after the transmission
// and one-way latency, a send queue capped by bytes (send() false past it),
// frames past their expiry dropped before they use the uplink. Loss: TCP
// retransmits, so a lost segment is modelled as a retransmission timeout
// (rtoMs) added to that frame, delaying every later frame on the connection
// (head-of-line), with probability `loss` per frame. Urgent (control) frames
// do not queue behind other connections' data. A killed node vanishes:
// nothing more leaves or arrives, peers hear nothing until their link
// layer's dead timer (linkDeadMs) reports the link down; connects to it time
// out after connectTimeoutMs.

import type { SimClock } from '../../src/hal'
import { createSeededRandom, type Random } from '../../src/hal'
import { FRAME_HEADER_BYTES } from '../../src/protocol/link'
import type { PeerRef, StreamTransport, TransportHandler, TransportSendOptions } from '../../src/stream'
import { wire } from '../../src/stream'

export interface VirtualConditions {
  latencyMs: number
  jitterMs: number
  loss: number
  rtoMs: number
  connectTimeoutMs: number
  linkDeadMs: number
  queueBytesMax: number
}

export interface VirtualStats {
  chunkFrames: number
  chunkBytes: number
  controlFrames: number
  controlBytes: number
  expired: number
  refused: number
  retransmits: number
}

interface Conn { peer: VNode, lastArrival: number, inFlight: Array<[number, number]>, queued: number, open: boolean }

export class VirtualNet {
  readonly nodes = new Map<string, VNode>()
  readonly stats: VirtualStats = { chunkFrames: 0, chunkBytes: 0, controlFrames: 0, controlBytes: 0, expired: 0, refused: 0, retransmits: 0 }
  readonly random: Random

  constructor (readonly clock: SimClock, readonly conditions: VirtualConditions, readonly chunkMediaBytes: number, seed: number) {
    this.random = createSeededRandom(seed)
  }

  add (id: string, uplinkBytesPerSec: number): VNode {
    const n = new VNode(this, id, uplinkBytesPerSec)
    this.nodes.set(id, n)
    return n
  }

  cost (frame: Buffer): number {
    return frame[FRAME_HEADER_BYTES] === wire.MSG.chunk ? this.chunkMediaBytes : frame.length
  }

  delay (): number { return this.conditions.latencyMs + this.random.float() * this.conditions.jitterMs }
}

export class VNode implements StreamTransport {
  alive = true
  uplinkFreeAt = 0
  /** A slow receiver: bytes/s it can take in, all connections together (0: no limit). */
  downlinkBytesPerSec = 0
  downFreeAt = 0
  /** Bytes this node's uplink carried, by kind. */
  sentChunkBytes = 0
  sentControlBytes = 0
  private handler: TransportHandler | null = null
  private readonly conns = new Map<string, Conn>()
  private readonly connecting = new Set<string>()

  constructor (private readonly net: VirtualNet, readonly selfId: string, readonly uplinkBytesPerSec: number) {}

  setHandler (h: TransportHandler): void { this.handler = h }

  connect (peer: PeerRef): void {
    const id = peer.nodeId
    if (!this.alive || this.conns.has(id) || this.connecting.has(id)) return
    const target = this.net.nodes.get(id)
    this.connecting.add(id)
    const clock = this.net.clock
    if (target === undefined || !target.alive) {
      clock.setTimeout(() => { this.connecting.delete(id); if (this.alive) this.handler?.down(id) }, target === undefined ? 1 : this.net.conditions.connectTimeoutMs)
      return
    }
    // TCP handshake and the link's hello/proof: two round trips.
    clock.setTimeout(() => {
      this.connecting.delete(id)
      if (!this.alive) return
      if (!target.alive) { this.handler?.down(id); return }
      if (this.conns.has(id)) return
      this.open(target)
      target.open(this)
      target.handler?.up(this.selfId)
      this.handler?.up(id)
    }, 4 * this.net.conditions.latencyMs)
  }

  private open (peer: VNode): void {
    this.conns.set(peer.selfId, { peer, lastArrival: 0, inFlight: [], queued: 0, open: true })
  }

  isUp (nodeId: string): boolean { return this.alive && this.conns.get(nodeId)?.open === true }

  queuedBytes (nodeId: string): number {
    const c = this.conns.get(nodeId)
    if (c === undefined) return 0
    const now = this.net.clock.nowMs()
    while (c.inFlight.length > 0 && c.inFlight[0]![0] <= now) c.queued -= c.inFlight.shift()![1]
    return c.queued
  }

  send (nodeId: string, frame: Buffer, options: TransportSendOptions = {}): boolean {
    const c = this.conns.get(nodeId)
    if (!this.alive || c === undefined || !c.open) return false
    const net = this.net
    const now = net.clock.nowMs()
    const cost = net.cost(frame)
    if (this.queuedBytes(nodeId) + cost > net.conditions.queueBytesMax) { net.stats.refused++; return false }
    // Control frames do not wait behind other connections' bulk data: TCP flows share the uplink, and the
    // link sends urgent frames ahead of its queue. They stay in order on their own connection (below).
    const start = options.urgent === true ? now : Math.max(now, this.uplinkFreeAt)
    if (options.expiresAtMs !== undefined && options.expiresAtMs !== 0 && start > options.expiresAtMs) { net.stats.expired++; return true }
    const sent = start + (this.uplinkBytesPerSec > 0 ? cost * 1000 / this.uplinkBytesPerSec : 0)
    if (options.urgent !== true) this.uplinkFreeAt = sent
    // A slow receiver holds its bytes in this connection's queue (TCP flow control), not in the shared uplink.
    const peerNode = c.peer
    let done = sent
    if (peerNode.downlinkBytesPerSec > 0) {
      done = Math.max(sent, peerNode.downFreeAt) + cost * 1000 / peerNode.downlinkBytesPerSec
      peerNode.downFreeAt = done
    }
    c.inFlight.push([done, cost])
    c.queued += cost
    let arrival = done + net.delay()
    if (net.random.float() < net.conditions.loss) { arrival += net.conditions.rtoMs; net.stats.retransmits++ }
    arrival = Math.max(arrival, c.lastArrival)
    c.lastArrival = arrival
    if (cost === frame.length) { net.stats.controlFrames++; net.stats.controlBytes += cost; this.sentControlBytes += cost } else { net.stats.chunkFrames++; net.stats.chunkBytes += cost; this.sentChunkBytes += cost }
    const peer = c.peer
    net.clock.setTimeout(() => {
      if (!this.alive || !peer.alive || !c.open) return
      peer.handler?.frame(this.selfId, frame)
    }, arrival - now)
    return true
  }

  rttMs (nodeId: string): number | null { return this.conns.has(nodeId) ? 2 * this.net.conditions.latencyMs : null }
  hint (): { address: string, port: number } | null { return null }

  peers (): PeerRef[] {
    const out: PeerRef[] = []
    for (const n of this.net.nodes.values()) if (n !== this && n.alive) out.push({ nodeId: n.selfId })
    return out
  }

  /** Die without warning. Peers notice through the stream's heartbeats; their link layer reports it linkDeadMs later. */
  kill (): void {
    this.alive = false
    for (const c of this.conns.values()) {
      c.open = false
      const peer = c.peer
      const back = peer.conns.get(this.selfId)
      this.net.clock.setTimeout(() => {
        if (back !== undefined && peer.conns.get(this.selfId) === back) {
          peer.conns.delete(this.selfId)
          if (peer.alive) peer.handler?.down(this.selfId)
        }
      }, this.net.conditions.linkDeadMs)
    }
    this.conns.clear()
  }
}
