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
import { PeerList, type PeerOrigin } from '../peer-list/peer-list'
import type { PeerInfo } from '../peers'
import { formatLocation } from '../ssdp/names'
import { Ssdp, type Announcement } from '../ssdp/ssdp'
import { signDescribe, type DescribeFields, type VerifiedDescribe } from './describe'
import { netDescribeFetcher, type DescribeFetcher } from './fetcher'
import type { GetTarget } from './http-get'
import { parseStaticPeer } from './static-peers'
import { VerifyQueue } from './verify-queue'

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

export class Discovery {
  readonly name = 'discovery'
  readonly peers: PeerList
  readonly queue: VerifyQueue
  ssdp: Ssdp | null = null
  private readonly capabilities = new Set<string>()
  private readonly timers: TimerGroup
  private readonly staticTargets: GetTarget[]
  private readonly log: Logger
  private started = false
  private stopped = false

  constructor (private readonly o: DiscoveryOptions) {
    this.log = o.log
    this.peers = new PeerList(o.clock, o.log)
    this.timers = new TimerGroup(o.clock)
    const userAgent = `Canopy/${o.version}`
    this.queue = new VerifyQueue(o.clock, o.random, o.fetcher ?? netDescribeFetcher(o.net, o.clock, userAgent), o.log)
    this.staticTargets = o.config.staticPeers.map(parseStaticPeer).filter((t): t is GetTarget => t !== null)
  }

  /** Capabilities this node offers, as listed in its self-description (other subsystems add theirs). */
  addCapability (name: string): void {
    if (this.capabilities.has(name) || this.capabilities.size >= DESCRIBE_CAPABILITIES_COUNT_MAX) return
    this.capabilities.add(name)
    this.ssdp?.announce() // CONFIGID changed: peers fetch our description again
  }

  /** What our self-description says now. */
  fields (): DescribeFields {
    const addresses: string[] = []
    for (const nic of this.o.nics.list()) {
      if (nic.role !== 'lan' || !nic.up) continue
      for (const a of nic.addresses) if (addresses.length < DESCRIBE_ADDRESSES_COUNT_MAX) addresses.push(a.address)
    }
    return {
      name: this.o.name,
      version: this.o.version,
      capabilities: [...this.capabilities].sort(),
      httpPort: this.o.httpPort() ?? 0,
      udpPort: this.o.udpPort(),
      linkPort: this.o.linkPort?.() ?? null,
      addresses
    }
  }

  /** The signed body of GET /api/describe. */
  describe (nonce: string | null): Buffer {
    return signDescribe(this.o.identity, this.fields(), nonce)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.timers.setInterval(() => { this.peers.sweep() }, PEER_SWEEP_MS)
    if (this.staticTargets.length > 0) {
      this.checkStaticPeers()
      this.timers.setInterval(() => { this.checkStaticPeers() }, this.o.config.staticRecheckMs)
    }
    if (this.o.httpPort() !== null) await this.ready()
  }

  /** The HTTP port listens: SSDP may point LOCATION at it. */
  async ready (): Promise<void> {
    const port = this.o.httpPort()
    if (!this.started || this.stopped || this.ssdp !== null || !this.o.config.enabled || port === null) return
    const c = this.o.config
    this.ssdp = new Ssdp({
      clock: this.o.clock,
      random: this.o.random,
      nics: this.o.nics,
      net: this.o.net,
      log: this.log,
      nodeId: this.o.identity.nodeId,
      httpHost: this.o.httpHost,
      httpPort: port,
      maxAgeSeconds: c.maxAgeSeconds,
      // UDA: re-announce well inside max-age, or peers drop us between two NOTIFYs.
      notifyIntervalMs: Math.min(c.notifyIntervalMs, Math.floor((c.maxAgeSeconds * 1000) / 3)),
      server: `Node.js/${process.versions.node.split('.')[0] ?? '0'} UPnP/1.1 Canopy/${this.o.version}`,
      configId: () => this.configId(),
      ...(this.o.ssdpPort === undefined ? {} : { port: this.o.ssdpPort })
    })
    this.ssdp.onAnnouncement((a) => { this.onAnnouncement(a) })
    await this.ssdp.start()
    if (this.ssdp.interfaces().length === 0) {
      this.log.info('SSDP has no interface to serve', { httpHost: this.o.httpHost, hint: 'needs a LAN interface and an HTTP host that is not loopback' })
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.timers.clearAll()
    this.queue.close()
    await this.ssdp?.stop()
  }

  status (): Record<string, unknown> {
    const s = this.ssdp
    const dropped = s === null ? {} : Object.fromEntries(Object.entries(s.stats.dropped).filter(([, n]) => n > 0))
    return {
      count: this.peers.size,
      ssdp: s === null
        ? (this.o.config.enabled ? 'starting' : 'disabled')
        : { interfaces: s.interfaces().map((i) => ({ nic: i.nic, address: i.address, location: i.location })), datagramsIn: s.stats.datagramsIn, datagramsOut: s.stats.datagramsOut, heard: s.stats.heard, dropped, repliesRateLimited: s.stats.repliesRateLimited },
      staticPeers: this.o.config.staticPeers,
      verifications: { verified: this.queue.stats.verified, failed: this.queue.stats.failed, inFlight: this.queue.inFlight, queued: this.queue.queued }
    }
  }

  /** A number that changes when our self-description's content does (CONFIGID.UPNP.ORG). */
  configId (): number {
    const f = this.fields()
    const digest = createHash('sha256').update(JSON.stringify({ ...f, name: this.o.name })).digest()
    return digest.readUInt32BE(0) & 0x7fffffff
  }

  // ---- announcements --------------------------------------------------------------

  private onAnnouncement (a: Announcement): void {
    if (a.type === 'byebye') {
      const p = this.peers.get(a.nodeId)
      // Only from the peer's own address: a byebye from elsewhere is somebody else's claim.
      if (p !== undefined && p.address === a.source) this.peers.remove(a.nodeId, 'byebye')
      return
    }
    const expiresMs = this.o.clock.nowMs() + a.maxAgeSeconds * 1000
    const known = this.peers.get(a.nodeId)
    const origin = this.peers.origin(a.nodeId)
    const sameSource = known !== undefined && known.address === a.source
    const unchanged = origin !== undefined && origin.location === formatLocation(a.location) &&
      (a.bootId === null || a.bootId === origin.bootId) && (a.configId === null || a.configId === origin.configId)
    if (sameSource && unchanged) {
      this.peers.touch(a.nodeId, expiresMs)
      return
    }
    // New, moved, restarted or changed: fetch and verify again. Until that
    // succeeds the old entry stands, and a sign of life from its address still counts.
    const outcome = this.queue.request({
      target: a.location,
      expectNodeId: a.nodeId,
      expectAddress: a.source,
      onVerified: (v) => {
        this.admit(v, a.source, { via: 'ssdp', location: formatLocation(a.location), nic: a.nic, bootId: a.bootId, configId: a.configId }, this.o.clock.nowMs() + a.maxAgeSeconds * 1000)
      }
    })
    if (outcome !== 'queued' && sameSource) this.peers.touch(a.nodeId, expiresMs)
  }

  private checkStaticPeers (): void {
    for (const target of this.staticTargets) {
      this.queue.request({
        target,
        expectNodeId: null,
        expectAddress: null,
        onVerified: (v) => {
          const location = `http://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}${target.path}`
          this.admit(v, target.host, { via: 'static', location, nic: null, bootId: null, configId: null }, this.o.clock.nowMs() + 3 * this.o.config.staticRecheckMs)
        }
      })
    }
  }

  private admit (v: VerifiedDescribe, address: string, origin: PeerOrigin, expiresMs: number): void {
    if (this.stopped || v.document.nodeId === this.o.identity.nodeId) return
    const d = v.document
    const peer: PeerInfo = {
      nodeId: d.nodeId,
      publicKey: v.publicKey,
      address,
      httpPort: d.httpPort,
      udpPort: d.udpPort,
      ...(d.linkPort === null ? {} : { linkPort: d.linkPort }),
      capabilities: d.capabilities,
      name: d.name,
      version: d.version,
      lastSeenMs: this.o.clock.nowMs(),
      expiresMs
    }
    const outcome = this.peers.upsert(peer, origin)
    if (outcome !== 'refreshed') this.log.info(`peer ${outcome}`, { nodeId: d.nodeId, address, via: origin.via, name: d.name })
  }
}
