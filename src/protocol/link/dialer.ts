// Static link peers (config link.peers, "HOST:PORT"): dialled at start and
// kept open, with jittered backoff after a failure. A peer enters the
// directory only once its handshake has proved the key its node id derives
// from, and leaves it when its link closes. This is the minimum a node needs
// without SSDP; the SSDP peer list fills the same PeerDirectory interface.

import type { Clock, Random, Timer } from '../../hal'
import { LINK_REDIAL_MS_MAX, LINK_REDIAL_MS_MIN } from '../../limits'
import type { Logger } from '../../log'
import type { PeerInfo, StaticPeerDirectory } from '../peers'
import { LINK_CHANNELS } from './channels'
import type { LinkHost } from './host'
import type { Link } from './link'

export interface LinkTarget { host: string, port: number }

/** "HOST:PORT" or "[V6]:PORT" (already checked by the config schema). */
export function parseLinkTarget (text: string): LinkTarget {
  const m = /^\[(.*)\]:(\d+)$/.exec(text) ?? /^(.*):(\d+)$/.exec(text)
  return { host: m?.[1] ?? text, port: Number(m?.[2] ?? 0) }
}

export function peerFromLink (link: Link, address: string, nowMs: number): PeerInfo {
  const names = Object.entries(LINK_CHANNELS).filter(([, n]) => link.peerChannels.has(n)).map(([name]) => name)
  return {
    nodeId: link.nodeId,
    publicKey: link.publicKey,
    address,
    httpPort: 0,
    udpPort: 0,
    linkPort: link.peerListenPort,
    capabilities: names,
    name: '',
    version: '',
    lastSeenMs: nowMs,
    expiresMs: Number.POSITIVE_INFINITY
  }
}

export class LinkDialer {
  private readonly timers = new Set<Timer>()
  private stopped = false

  constructor (
    private readonly host: LinkHost,
    private readonly directory: StaticPeerDirectory,
    private readonly targets: readonly LinkTarget[],
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly log: Logger
  ) {}

  start (): void {
    for (const t of this.targets) this.dial(t, LINK_REDIAL_MS_MIN)
  }

  stop (): void {
    this.stopped = true
    for (const t of this.timers) t.cancel()
    this.timers.clear()
  }

  private dial (target: LinkTarget, backoffMs: number): void {
    if (this.stopped) return
    this.host.connect(target.host, target.port).then((link) => {
      if (this.stopped) return
      link.pin()
      this.directory.set(peerFromLink(link, target.host, this.clock.nowMs()))
      link.onClose(() => {
        if (this.directory.get(link.nodeId)?.linkPort === link.peerListenPort) this.directory.remove(link.nodeId)
        this.later(target, LINK_REDIAL_MS_MIN)
      })
    }, (err: unknown) => {
      this.log.debug('static link peer unreachable', { target: `${target.host}:${target.port}`, err })
      this.later(target, Math.min(LINK_REDIAL_MS_MAX, backoffMs * 2))
    })
  }

  private later (target: LinkTarget, backoffMs: number): void {
    if (this.stopped) return
    const delay = backoffMs / 2 + this.random.float() * backoffMs / 2
    const t = this.clock.setTimeout(() => { this.timers.delete(t); this.dial(target, backoffMs) }, delay)
    this.timers.add(t)
  }
}
