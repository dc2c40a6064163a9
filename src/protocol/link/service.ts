// The link endpoint as an agent service (structurally an agent Service: the
// protocol layer does not import the agent): the LinkHost on link.port and
// the link figures for /api/status. Peers come from the peer list (SSDP or
// discovery.staticPeers), which learns their link port from /api/describe.

import type { Clock, Net, Random } from '../../hal'
import type { Logger } from '../../log'
import type { ChannelName } from './channels'
import { createLinkHost } from './host'
import type { LinkIdentity } from './link'
import type { FramePool } from './pool'

export interface LinkServiceOptions {
  net: Net
  clock: Clock
  random: Random
  identity: LinkIdentity
  log: Logger
  host: string
  port: number
  channels: readonly ChannelName[]
  allow: (remote: string) => boolean
  pool?: FramePool
  /** The hello extension for each new link (groups: an X25519 key share). */
  extension?: () => Buffer
}

export type LinkService = ReturnType<typeof createLinkService>

export function createLinkService (o: LinkServiceOptions) {
  const host = createLinkHost(o)
  const pool = o.pool
  return {
    name: 'link',
    host,
    pool,
    start: async (): Promise<void> => { await host.start() },
    stop: (): Promise<void> => host.stop(),
    status: (): Record<string, unknown> => ({
      port: host.listenPort,
      counters: host.counters,
      framePool: pool === undefined ? null : { ...pool.counters, capacity: pool.capacity },
      links: host.list().map((l) => ({
        nodeId: l.nodeId,
        address: `${l.remoteAddress}:${l.peerListenPort}`,
        dialled: l.initiator,
        rttMs: l.rttMs,
        queuedBytes: l.queuedBytes,
        ...l.counters
      }))
    })
  }
}
