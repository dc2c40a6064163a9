// Discovery: SSDP and static peers in, verified peers out. An announcement
// (NOTIFY alive or search reply) names a node id and a LOCATION; the peer
// enters the list only after the self-description at LOCATION is signed by
// the key that node id derives from, answers our nonce, and lists the
// address the announcement came from. A byebye from a peer's own address
// removes it; silence removes it at its max-age.

import { createHash } from 'node:crypto'
import type { Clock, Net, Nics, Random } from '../../hal'
import { TimerGroup } from '../../hal'
import type { Identity } from '../../identity'
import { DESCRIBE_ADDRESSES_COUNT_MAX, DESCRIBE_CAPABILITIES_COUNT_MAX, PEER_SWEEP_MS } from '../../limits'
import type { Logger } from '../../log'
import { nonZero } from '../counts'
import { peerList, type PeerList, type PeerOrigin } from '../peer-list/peer-list'
import { baseUrlOf } from '../resolve/types'
import type { PeerInfo } from '../peers'
import { formatLocation } from '../ssdp/names'
import { createSsdp, type Announcement, type Ssdp } from '../ssdp/ssdp'
import { signDescribe, type DescribeFields } from './describe'
import { netDescribeFetcher, type DescribeFetcher } from './fetcher'
import type { GetTarget } from './http-get'
import { parseStaticPeer } from './static-peers'
import { verifyQueue, type RequestOutcome, type VerifyQueue } from './verify-queue'

export interface DiscoveryConfig {
  enabled: boolean
  notifyIntervalMs: number
  maxAgeSeconds: number
  staticPeers: readonly string[]
  staticRecheckMs: number
}

export interface DiscoveryOptions {
  clock: Clock
  random: Random
  nics: Nics
  net: Net
  log: Logger
  identity: Identity
  config: DiscoveryConfig
  /** The HTTP server's listen address (decides the interfaces SSDP may use). */
  httpHost: string
  /** The HTTP server's port; null until it listens (SSDP starts in ready()). */
  httpPort: () => number | null
  /** The wire transport's bound UDP port (it may fall back to an ephemeral one). */
  udpPort: () => number
  /** The peer link's bound TCP port, when the link runs. */
  linkPort?: () => number | null
  name: string
  version: string
  fetcher?: DescribeFetcher
  /** Tests only: SSDP on another port than 1900. */
  ssdpPort?: number
}

export interface Discovery {
  readonly name: 'discovery'
  readonly peers: PeerList
  readonly queue: VerifyQueue
  /** Null until ready() started it (or when disabled). */
  readonly ssdp: Ssdp | null
  /** Capabilities this node offers, as listed in its self-description (other subsystems add theirs). */
  addCapability: (name: string) => void
  /** What our self-description says now. */
  fields: () => DescribeFields
  /** The signed body of GET /api/describe. */
  describe: (nonce: string | null) => Buffer
  start: () => Promise<void>
  /** The HTTP port listens: SSDP may point LOCATION at it. */
  ready: () => Promise<void>
  stop: () => Promise<void>
  status: () => Record<string, unknown>
  /** A number that changes when our self-description's content does (CONFIGID.UPNP.ORG). */
  configId: () => number
}

/**
 * `new Discovery(o)` still works (test/helpers/sim-lan.ts, bench): a plain
 * function that returns an object may be called with `new`.
 */
export const Discovery = createDiscovery as unknown as new (o: DiscoveryOptions) => Discovery

export function createDiscovery (o: DiscoveryOptions): Discovery {
  const { clock, log, identity, config } = o
  const peers = peerList(clock, log)
  const queue = verifyQueue(clock, o.random, o.fetcher ?? netDescribeFetcher(o.net, clock, `Canopy/${o.version}`), log)
  const capabilities = new Set<string>()
  const timers = new TimerGroup(clock)
  const staticTargets = config.staticPeers.map(parseStaticPeer).filter((t): t is GetTarget => !!t)
  let ssdp: Ssdp | null = null
  let started = false
  let stopped = false

  const fields = (): DescribeFields => {
    const addresses: string[] = []
    for (const nic of o.nics.list()) {
      if (nic.role !== 'lan' || !nic.up) continue
      for (const a of nic.addresses) if (addresses.length < DESCRIBE_ADDRESSES_COUNT_MAX) addresses.push(a.address)
    }
    return {
      name: o.name,
      version: o.version,
      capabilities: [...capabilities].sort(),
      httpPort: o.httpPort() ?? 0,
      udpPort: o.udpPort(),
      linkPort: o.linkPort?.() ?? null,
      addresses
    }
  }

  const configId = (): number => createHash('sha256').update(JSON.stringify(fields())).digest().readUInt32BE(0) & 0x7fffffff

  /** Fetch and verify target's self-description; once verified, the peer is listed at address for ttlMs from then. */
  const verify = (target: GetTarget, nodeId: string | null, heardFrom: string | null, address: string, origin: PeerOrigin, ttlMs: number): RequestOutcome =>
    queue.request({
      target,
      nodeId,
      address: heardFrom,
      onVerified: ({ document: d, publicKey }) => {
        if (stopped || d.nodeId === identity.nodeId) return
        const now = clock.nowMs()
        const peer: PeerInfo = {
          nodeId: d.nodeId,
          publicKey,
          address,
          httpPort: d.httpPort,
          udpPort: d.udpPort,
          ...(d.linkPort === null ? {} : { linkPort: d.linkPort }),
          capabilities: d.capabilities,
          name: d.name,
          version: d.version,
          lastSeenMs: now,
          expiresMs: now + ttlMs
        }
        const outcome = peers.upsert(peer, origin)
        if (outcome !== 'refreshed') log.info(`peer ${outcome}`, { nodeId: d.nodeId, address, via: origin.via, name: d.name })
      }
    })

  // ---- announcements --------------------------------------------------------------

  const onAnnouncement = (a: Announcement): void => {
    const known = peers.get(a.nodeId)
    const sameSource = known?.address === a.source
    if (a.type === 'byebye') {
      // Only from the peer's own address: a byebye from elsewhere is somebody else's claim.
      if (sameSource) peers.remove(a.nodeId, 'byebye')
      return
    }
    const ttlMs = a.maxAgeSeconds * 1000
    const expiresMs = clock.nowMs() + ttlMs
    const origin = peers.origin(a.nodeId)
    const location = formatLocation(a.location)
    const unchanged = !!origin && origin.location === location &&
      (a.bootId === null || a.bootId === origin.bootId) && (a.configId === null || a.configId === origin.configId)
    if (sameSource && unchanged) {
      peers.touch(a.nodeId, expiresMs)
      return
    }
    // New, moved, restarted or changed: fetch and verify again. Until that
    // succeeds the old entry stands, and a sign of life from its address still counts.
    const outcome = verify(a.location, a.nodeId, a.source, a.source, { via: 'ssdp', location, nic: a.nic, bootId: a.bootId, configId: a.configId }, ttlMs)
    if (outcome !== 'queued' && sameSource) peers.touch(a.nodeId, expiresMs)
  }

  const checkStaticPeers = (): void => {
    for (const t of staticTargets) {
      verify(t, null, null, t.host, { via: 'static', location: baseUrlOf(t.host, t.port) + t.path, nic: null, bootId: null, configId: null }, 3 * config.staticRecheckMs)
    }
  }

  const ready = async (): Promise<void> => {
    const port = o.httpPort()
    if (!started || stopped || ssdp || !config.enabled || port === null) return
    const s = ssdp = createSsdp({
      ...o, // clock, random, nics, net, log, httpHost
      nodeId: identity.nodeId,
      httpPort: port,
      maxAgeSeconds: config.maxAgeSeconds,
      // UDA: re-announce well inside max-age, or peers drop us between two NOTIFYs.
      notifyIntervalMs: Math.min(config.notifyIntervalMs, Math.floor((config.maxAgeSeconds * 1000) / 3)),
      server: `Node.js/${process.versions.node.split('.')[0]!} UPnP/1.1 Canopy/${o.version}`,
      configId,
      ...(o.ssdpPort === undefined ? {} : { port: o.ssdpPort })
    })
    s.onAnnouncement(onAnnouncement)
    await s.start()
    if (s.interfaces().length === 0) {
      log.info('SSDP has no interface (needs a LAN interface, an HTTP host not loopback)', { httpHost: o.httpHost })
    }
  }

  return {
    name: 'discovery',
    peers,
    queue,
    get ssdp () { return ssdp },
    addCapability (name) {
      if (capabilities.has(name) || capabilities.size >= DESCRIBE_CAPABILITIES_COUNT_MAX) return
      capabilities.add(name)
      ssdp?.announce() // CONFIGID changed: peers fetch our description again
    },
    fields,
    describe: (nonce) => signDescribe(identity, fields(), nonce),
    async start () {
      if (started) return
      started = true
      timers.setInterval(() => { peers.sweep() }, PEER_SWEEP_MS)
      if (staticTargets.length > 0) {
        checkStaticPeers()
        timers.setInterval(checkStaticPeers, config.staticRecheckMs)
      }
      if (o.httpPort() !== null) await ready()
    },
    ready,
    async stop () {
      stopped = true
      timers.clearAll()
      queue.close()
      await ssdp?.stop()
    },
    status: () => ({
      count: peers.size,
      ssdp: !ssdp
        ? (config.enabled ? 'starting' : 'disabled')
        : { ...ssdp.stats, interfaces: ssdp.interfaces(), dropped: nonZero(ssdp.stats.dropped) },
      staticPeers: config.staticPeers,
      verifications: { verified: queue.stats.verified, failed: queue.stats.failed, inFlight: queue.inFlight, queued: queue.queued }
    }),
    configId
  }
}
