// The link endpoint as an agent service (structurally an agent Service: the
// protocol layer does not import the agent): the LinkHost on link.port and
// the link figures for /api/status. Peers come from the peer list (SSDP or
// discovery.staticPeers), which learns their link port from /api/describe.

import type { Clock, Net, Random } from '../../hal'
import type { Logger } from '../../log'
import type { ChannelName } from './channels'
import { LinkHost } from './host'
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
}

export class LinkService {
  readonly name = 'link'
  readonly host: LinkHost
  readonly pool: FramePool | undefined

  constructor (o: LinkServiceOptions) {
    this.host = new LinkHost({ net: o.net, clock: o.clock, random: o.random, identity: o.identity, log: o.log, host: o.host, port: o.port, channels: o.channels, allow: o.allow, pool: o.pool })
    this.pool = o.pool
  }

  async start (): Promise<void> {
    await this.host.start()
  }

  async stop (): Promise<void> {
    await this.host.stop()
  }

  status (): Record<string, unknown> {
    return {
      port: this.host.listenPort,
      counters: this.host.counters,
      framePool: this.pool === undefined ? null : { ...this.pool.counters, capacity: this.pool.capacity },
      links: this.host.list().map((l) => ({
        nodeId: l.nodeId,
        address: `${l.remoteAddress}:${l.peerListenPort}`,
        dialled: l.initiator,
        rttMs: l.rttMs,
        queuedBytes: l.queuedBytes,
        ...l.counters
      }))
    }
  }
}
