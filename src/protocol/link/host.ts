// The link endpoint of one node: listens (hal.net.listen), dials
// (hal.net.connect), runs every handshake, keeps one open link per peer node
// id, dispatches frames by channel, closes idle links, and bounds links and
// handshakes in flight.

import { randomBytes } from 'node:crypto'
import { CanopyError } from '../../errors'
import type { Clock, Net, Random, StreamSocket, TcpServer, Timer } from '../../hal'
import { LINK_CONNECT_MS, LINK_COUNT_MAX, LINK_HANDSHAKE_MS, LINK_HANDSHAKES_MAX, LINK_IDLE_MS } from '../../limits'
import type { Logger } from '../../log'
import { channelNumber, type ChannelName } from './channels'
import { NONCE_BYTES } from './control'
import { Link, type LinkIdentity, type LinkTimings } from './link'
import type { FramePool } from './pool'

export interface LinkHostOptions {
  net: Net
  clock: Clock
  /** Nonces come from here: crypto randomness on a device, seeded in simulations. */
  random?: Random
  identity: LinkIdentity
  log: Logger
  /** Listen address and port (0: any free port). */
  host?: string
  port: number
  /** Who may connect (the HTTP port's source policy); default everyone. */
  allow?: (remote: string) => boolean
  /** Channels this node serves. */
  channels: readonly ChannelName[]
  extension?: () => Buffer
  timings?: Partial<LinkTimings>
  idleMs?: number
  linksMax?: number
  /** Frames for every link of this host (stream chunks) come from and return to this pool. */
  pool?: FramePool
}

export type ChannelHandler = (link: Link, frame: Buffer) => void

export interface LinkHostCounters {
  accepted: number
  dialled: number
  refused: number
  handshakeFailures: number
  duplicates: number
  idleClosed: number
}

export class LinkHost {
  readonly counters: LinkHostCounters = { accepted: 0, dialled: 0, refused: 0, handshakeFailures: 0, duplicates: 0, idleClosed: 0 }
  private readonly links = new Map<string, Link>()
  private readonly handshaking = new Set<Link>()
  private readonly dialing = new Map<string, Promise<Link>>()
  private readonly handlers = new Map<number, ChannelHandler>()
  private readonly openListeners: Array<(link: Link) => void> = []
  private readonly closeListeners: Array<(link: Link) => void> = []
  private server: TcpServer | null = null
  private sweep: Timer | null = null
  private stopped = false
  listenPort = 0

  constructor (private readonly options: LinkHostOptions) {}

  get nodeId (): string { return this.options.identity.nodeId }

  async start (): Promise<number> {
    this.server = await this.options.net.listen({ port: this.options.port, host: this.options.host }, (s) => { this.onInbound(s) })
    this.listenPort = this.server.port
    const idle = this.options.idleMs ?? LINK_IDLE_MS
    this.sweep = this.options.clock.setInterval(() => { this.closeIdle(idle) }, Math.max(1_000, idle / 4))
    return this.listenPort
  }

  /** Frames arriving on this channel. One handler per channel. */
  on (channel: ChannelName, handler: ChannelHandler): void {
    if (!this.options.channels.includes(channel)) throw new CanopyError('ASSERTION', `channel ${channel} is not served by this host`)
    this.handlers.set(channelNumber(channel), handler)
  }

  onOpen (fn: (link: Link) => void): void { this.openListeners.push(fn) }
  onClosed (fn: (link: Link) => void): void { this.closeListeners.push(fn) }

  get (nodeId: string): Link | undefined { return this.links.get(nodeId) }
  list (): Link[] { return [...this.links.values()] }
  get size (): number { return this.links.size }

  /**
   * An open link to the node listening at address:port, reusing one that is
   * already open to expectedNodeId. Rejects with NET_*, TIMEOUT,
   * LINK_HANDSHAKE_FAILED or LIMIT_REACHED.
   */
  connect (address: string, port: number, expectedNodeId?: string): Promise<Link> {
    if (this.stopped) return Promise.reject(new CanopyError('CLOSED', 'the link host is stopped'))
    if (expectedNodeId !== undefined) {
      const open = this.links.get(expectedNodeId)
      if (open !== undefined) return Promise.resolve(open)
    }
    const key = `${address}|${port}|${expectedNodeId ?? ''}`
    const pending = this.dialing.get(key)
    if (pending !== undefined) return pending
    const p = this.dial(address, port, expectedNodeId).finally(() => { this.dialing.delete(key) })
    this.dialing.set(key, p)
    return p
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.sweep?.cancel()
    await this.server?.close()
    for (const l of [...this.handshaking, ...this.links.values()]) l.close('shutdown')
  }

  private async dial (address: string, port: number, expectedNodeId: string | undefined): Promise<Link> {
    if (this.links.size + this.handshaking.size >= (this.options.linksMax ?? LINK_COUNT_MAX)) {
      throw new CanopyError('LIMIT_REACHED', `already ${this.links.size} links open`)
    }
    if (this.handshaking.size >= LINK_HANDSHAKES_MAX) throw new CanopyError('LIMIT_REACHED', 'too many link handshakes in flight')
    const socket = await this.options.net.connect(address, port, LINK_CONNECT_MS)
    if (this.stopped) { socket.destroy(); throw new CanopyError('CLOSED', 'the link host is stopped') }
    this.counters.dialled++
    const link = this.adopt(socket, true, expectedNodeId)
    await link.ready
    // A simultaneous link in the other direction may have won the tie-break.
    return this.links.get(link.nodeId) ?? link
  }

  private onInbound (socket: StreamSocket): void {
    socket.on('error', () => {})
    const remote = socket.remoteAddress ?? ''
    const full = this.links.size + this.handshaking.size >= (this.options.linksMax ?? LINK_COUNT_MAX) || this.handshaking.size >= LINK_HANDSHAKES_MAX
    if (this.stopped || full || (this.options.allow !== undefined && !this.options.allow(remote))) {
      this.counters.refused++
      socket.destroy()
      return
    }
    this.counters.accepted++
    this.adopt(socket, false, undefined).ready.catch(() => {})
  }

  private adopt (socket: StreamSocket, initiator: boolean, expectedNodeId: string | undefined): Link {
    const link = new Link({
      socket,
      initiator,
      identity: this.options.identity,
      clock: this.options.clock,
      nonce: this.options.random?.bytes(NONCE_BYTES) ?? randomBytes(NONCE_BYTES),
      listenPort: this.listenPort,
      channels: this.options.channels,
      expectedNodeId,
      extension: this.options.extension?.(),
      timings: this.options.timings,
      pool: this.options.pool
    })
    this.handshaking.add(link)
    link.onFrame = (l, frame) => {
      const h = this.handlers.get(frame[4]!)
      if (h !== undefined) h(l, frame)
    }
    link.ready.then(() => { this.opened(link) }, (err: unknown) => {
      this.handshaking.delete(link)
      this.counters.handshakeFailures++
      this.options.log.debug('link handshake failed', { remote: link.remoteAddress, err })
    })
    link.onClose(() => {
      this.handshaking.delete(link)
      if (this.links.get(link.nodeId) === link) {
        this.links.delete(link.nodeId)
        for (const fn of this.closeListeners) fn(link)
      }
    })
    return link
  }

  private opened (link: Link): void {
    this.handshaking.delete(link)
    if (link.state !== 'open') return
    const other = this.links.get(link.nodeId)
    if (other !== undefined && other !== link) {
      // A peer that restarted dials again while our old link to it lingers: the new one wins.
      // Both sides dialling at once: keep the link dialled by the smaller node id, on both sides alike.
      this.counters.duplicates++
      const simultaneous = link.openedAtMs - other.openedAtMs < (this.options.timings?.handshakeMs ?? LINK_HANDSHAKE_MS)
      const keepNew = !simultaneous || (link.initiator ? this.nodeId : link.nodeId) < (link.initiator ? link.nodeId : this.nodeId)
      if (!keepNew) { link.close('duplicate'); return }
      this.links.delete(other.nodeId)
      for (const fn of this.closeListeners) fn(other)
      other.close('duplicate')
    }
    this.links.set(link.nodeId, link)
    for (const fn of this.openListeners) fn(link)
  }

  private closeIdle (idleMs: number): void {
    const now = this.options.clock.nowMs()
    for (const l of [...this.links.values()]) {
      // The dialling side decides: it knows why it dialled (a lookup, a join) and whether it still cares.
      if (l.initiator && !l.pinned && now - l.lastTrafficMs >= idleMs) {
        this.counters.idleClosed++
        l.close('idle')
      }
    }
  }
}
