// The link endpoint of one node: listens (hal.net.listen), dials
// (hal.net.connect), runs every handshake, keeps one open link per peer node
// id, dispatches frames by channel, closes idle links, and bounds links and
// handshakes in flight.

import { randomBytes } from 'node:crypto'
import { CanopyError, assert } from '../../errors'
import type { Clock, Net, Random, StreamSocket, TcpServer, Timer } from '../../hal'
import { LINK_CONNECT_MS, LINK_COUNT_MAX, LINK_HANDSHAKE_MS, LINK_HANDSHAKES_MAX, LINK_IDLE_MS } from '../../limits'
import type { Logger } from '../../log'
import { channelNumber, type ChannelName } from './channels'
import { NONCE_BYTES } from './control'
import { createLink, type Link, type LinkIdentity, type LinkTimings } from './link'
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

export type LinkHost = ReturnType<typeof createLinkHost>

export function createLinkHost (o: LinkHostOptions) {
  const counters: LinkHostCounters = { accepted: 0, dialled: 0, refused: 0, handshakeFailures: 0, duplicates: 0, idleClosed: 0 }
  const links = new Map<string, Link>()
  const handshaking = new Set<Link>()
  const dialing = new Map<string, Promise<Link>>()
  const handlers = new Map<number, ChannelHandler>()
  const openListeners: Array<(link: Link) => void> = []
  const closeListeners: Array<(link: Link) => void> = []
  const self = o.identity.nodeId
  let server: TcpServer | null = null
  let sweep: Timer | null = null
  let stopped = false
  let listenPort = 0

  /** Why no further link may start now ('' when one may). */
  const full = (): string =>
    links.size + handshaking.size >= (o.linksMax ?? LINK_COUNT_MAX)
      ? `${links.size} links open`
      : handshaking.size >= LINK_HANDSHAKES_MAX ? 'too many handshakes' : ''

  async function dial (address: string, port: number, expectedNodeId: string | undefined): Promise<Link> {
    const why = full()
    if (why !== '') throw new CanopyError('LIMIT_REACHED', why)
    const socket = await o.net.connect(address, port, LINK_CONNECT_MS)
    if (stopped) { socket.destroy(); throw stoppedError() }
    counters.dialled++
    const link = adopt(socket, true, expectedNodeId)
    await link.ready
    // A simultaneous link in the other direction may have won the tie-break.
    return links.get(link.nodeId) ?? link
  }

  function onInbound (socket: StreamSocket): void {
    socket.on('error', () => {})
    if (stopped || full() !== '' || o.allow?.(socket.remoteAddress ?? '') === false) {
      counters.refused++
      socket.destroy()
      return
    }
    counters.accepted++
    adopt(socket, false, undefined)
  }

  function adopt (socket: StreamSocket, initiator: boolean, expectedNodeId: string | undefined): Link {
    const link = createLink({
      ...o, // identity, clock, channels, timings, pool
      socket,
      initiator,
      nonce: o.random?.bytes(NONCE_BYTES) ?? randomBytes(NONCE_BYTES),
      listenPort,
      expectedNodeId,
      extension: o.extension?.(),
      onFrame: (l, frame) => { handlers.get(frame[4]!)?.(l, frame) }
    })
    handshaking.add(link)
    link.ready.then(() => { opened(link) }, (err: unknown) => {
      handshaking.delete(link)
      counters.handshakeFailures++
      o.log.debug('link handshake failed', { remote: link.remoteAddress, err })
    })
    link.onClose(() => {
      handshaking.delete(link)
      if (links.get(link.nodeId) === link) drop(link)
    })
    return link
  }

  function drop (link: Link): void {
    links.delete(link.nodeId)
    for (const fn of closeListeners) fn(link)
  }

  function opened (link: Link): void {
    handshaking.delete(link)
    if (!link.open) return
    const id = link.nodeId
    const other = links.get(id)
    if (other !== undefined && other !== link) {
      // A peer that restarted dials again while our old link to it lingers: the new one wins.
      // Both sides dialling at once: keep the link dialled by the smaller node id, on both sides alike.
      counters.duplicates++
      const simultaneous = link.openedAtMs - other.openedAtMs < (o.timings?.handshakeMs ?? LINK_HANDSHAKE_MS)
      if (simultaneous && (link.initiator ? self > id : id > self)) { link.close('duplicate'); return }
      drop(other)
      other.close('duplicate')
    }
    links.set(id, link)
    for (const fn of openListeners) fn(link)
  }

  const list = (): Link[] => [...links.values()]

  function closeIdle (idleMs: number): void {
    const now = o.clock.nowMs()
    for (const l of list()) {
      // The dialling side decides: it knows why it dialled (a lookup, a join) and whether it still cares.
      if (l.initiator && !l.pinned && now - l.lastTrafficMs >= idleMs) {
        counters.idleClosed++
        l.close('idle')
      }
    }
  }

  return {
    counters,
    nodeId: self,
    get listenPort (): number { return listenPort },

    async start (): Promise<number> {
      server = await o.net.listen({ port: o.port, host: o.host }, onInbound)
      listenPort = server.port
      const idle = o.idleMs ?? LINK_IDLE_MS
      sweep = o.clock.setInterval(() => { closeIdle(idle) }, Math.max(1_000, idle / 4))
      return listenPort
    },

    /** Frames arriving on this channel. One handler per channel. */
    on (channel: ChannelName, handler: ChannelHandler): void {
      assert(o.channels.includes(channel), 'channel served')
      handlers.set(channelNumber(channel), handler)
    },

    onOpen (fn: (link: Link) => void): void { openListeners.push(fn) },
    onClosed (fn: (link: Link) => void): void { closeListeners.push(fn) },
    get: (nodeId: string): Link | undefined => links.get(nodeId),
    list,
    get size (): number { return links.size },

    /**
     * An open link to the node listening at address:port, reusing one that is
     * already open to expectedNodeId. Rejects with NET_*, TIMEOUT,
     * LINK_HANDSHAKE_FAILED or LIMIT_REACHED.
     */
    connect (address: string, port: number, expectedNodeId?: string): Promise<Link> {
      if (stopped) return Promise.reject(stoppedError())
      const open = links.get(expectedNodeId ?? '')
      if (open !== undefined) return Promise.resolve(open)
      const key = `${address}|${port}|${expectedNodeId ?? ''}`
      let p = dialing.get(key)
      if (p === undefined) {
        p = dial(address, port, expectedNodeId).finally(() => { dialing.delete(key) })
        dialing.set(key, p)
      }
      return p
    },

    async stop (): Promise<void> {
      stopped = true
      sweep?.cancel()
      // Links first: a server does not finish closing while its accepted sockets are open.
      const closing = server?.close()
      for (const l of [...handshaking, ...links.values()]) l.close('shutdown')
      await closing
    }
  }
}

const stoppedError = (): CanopyError => new CanopyError('CLOSED', 'link host stopped')
