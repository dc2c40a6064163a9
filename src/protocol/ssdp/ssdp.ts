// The SSDP engine: follows the LAN interfaces, advertises this agent
// (NOTIFY alive at start, repeated, then periodically; byebye on stop),
// searches for other agents, answers searches under the rules below, and
// reports every Canopy agent it hears as an announcement for the peer list.
//
// Rules for what we answer (design.md, "Peers and discovery"):
// * only on LAN interfaces, never on WAN; one set of sockets per interface;
// * only sources inside the receiving interface's LAN prefixes, never its
//   network or broadcast address, never port 0;
// * MAN must be "ssdp:discover"; MX missing: no answer; MX > 5 counts as 5;
//   the answer waits a random delay in [0, MX] seconds;
// * one datagram per search, at most 3x the search's size and 512 bytes;
// * at most 1 reply per source per second (bursts of 3), 20 per second in all.

import { TimerGroup, formatIp, parseIp, type Clock, type Datagram, type Net, type Nics, type Random, type Timer } from '../../hal'
import { NIC_POLL_MS, SSDP_INTERFACE_RETRY_MS_MAX, SSDP_INTERFACES_COUNT_MAX, SSDP_PENDING_REPLIES_COUNT_MAX, SSDP_SEARCH_MX_SECONDS, SSDP_START_REPEAT_COUNT, SSDP_START_REPEAT_MS } from '../../limits'
import type { Logger } from '../../log'
import { SsdpInterface, type InterfaceInfo } from './interface'
import { DROP_REASONS, interpretSsdp, type DropReason } from './interpret'
import { answerType, buildAlive, buildByebye, buildReply, buildSearch, replyBudget, type Advert } from './messages'
import { CANOPY_DEVICE_TYPE, DESCRIBE_PATH, SSDP_GROUP, SSDP_PORT, type Location } from './names'
import { DEFAULT_REPLY_LIMITS, ReplyLimiter, type ReplyLimits } from './rate-limit'
import { checkSource } from './source'

export interface SsdpOptions {
  clock: Clock
  random: Random
  nics: Nics
  net: Net
  log: Logger
  nodeId: string
  /** The HTTP server's listen address: wildcard serves every LAN interface, an address only its own, loopback none. */
  httpHost: string
  httpPort: number
  maxAgeSeconds: number
  notifyIntervalMs: number
  /** SERVER header. */
  server: string
  /** CONFIGID.UPNP.ORG: changes when our self-description does. */
  configId: () => number
  /** Tests may move SSDP off 1900 (never in the root network namespace anyway). */
  port?: number
  group?: string
  limits?: ReplyLimits
}

/** A Canopy agent heard on a LAN interface, not yet verified. */
export type Announcement =
  | { type: 'alive', nodeId: string, location: Location, maxAgeSeconds: number, source: string, nic: string, via: 'notify' | 'reply', bootId: number | null, configId: number | null }
  | { type: 'byebye', nodeId: string, source: string, nic: string }

export interface SsdpStats {
  datagramsIn: number
  datagramsOut: { notify: number, byebye: number, search: number, reply: number }
  /** Canopy announcements that passed every check, by kind. */
  heard: { notify: number, reply: number, byebye: number }
  dropped: Record<DropReason, number>
  /** Searches left unanswered by the rate limits (also counted in dropped['rate-limited']). */
  repliesRateLimited: number
  interfaceErrors: number
}

const WILDCARD = new Set(['0.0.0.0', '::', '', '*'])

export class Ssdp {
  readonly stats: SsdpStats = {
    datagramsIn: 0,
    datagramsOut: { notify: 0, byebye: 0, search: 0, reply: 0 },
    heard: { notify: 0, reply: 0, byebye: 0 },
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>,
    repliesRateLimited: 0,
    interfaceErrors: 0
  }

  private readonly ifaces = new Map<string, SsdpInterface>()
  private readonly timers: TimerGroup
  private readonly limiter: ReplyLimiter
  private readonly listeners = new Set<(a: Announcement) => void>()
  private readonly port: number
  private readonly group: string
  private unsubscribe: (() => void) | null = null
  private reconciling: Promise<void> = Promise.resolve()
  private pendingReplies = 0
  private running = false
  /** Consecutive passes in which some interface could not be opened (port 1900 taken, interface still coming up). */
  private openFailures = 0
  private retry: Timer | null = null
  private readonly bootId: number

  constructor (private readonly o: SsdpOptions) {
    this.bootId = o.random.int(0x7fffffff)
    this.timers = new TimerGroup(o.clock)
    this.limiter = new ReplyLimiter(o.clock.nowMs(), o.limits ?? DEFAULT_REPLY_LIMITS)
    this.port = o.port ?? SSDP_PORT
    this.group = o.group ?? SSDP_GROUP
  }

  onAnnouncement (fn: (a: Announcement) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.unsubscribe = this.o.nics.on(() => { this.refresh() })
    await this.reconcile()
    this.scheduleNotify()
  }

  /** Byebye on every interface, then close every socket and timer. */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.unsubscribe?.()
    this.timers.clearAll()
    await this.reconciling
    const bye = buildByebye(this.o.nodeId)
    for (const iface of this.ifaces.values()) {
      if (iface.sendFromListener(bye, this.port, this.group)) this.stats.datagramsOut.byebye++
    }
    await Promise.all([...this.ifaces.values()].map((i) => i.flush()))
    for (const iface of this.ifaces.values()) iface.close(this.o.log)
    this.ifaces.clear()
  }

  /** M-SEARCH for Canopy agents on every interface now. */
  search (): void {
    for (const iface of this.ifaces.values()) this.searchOn(iface)
  }

  /** NOTIFY alive on every interface now. */
  announce (): void {
    for (const iface of this.ifaces.values()) this.announceOn(iface)
  }

  interfaces (): Array<InterfaceInfo & { location: string, searchPort: number }> {
    return [...this.ifaces.values()].map((i) => ({ ...i.info, location: this.advertFor(i).location, searchPort: i.searchPort }))
  }

  get sendErrors (): number {
    let n = 0
    for (const i of this.ifaces.values()) n += i.sendErrors
    return n
  }

  get pending (): number { return this.pendingReplies }

  // ---- interfaces ------------------------------------------------------------

  /** The interfaces we should serve now: LAN, up, multicast, with IPv4, allowed by the HTTP listen address. */
  eligible (): InterfaceInfo[] {
    const host = this.o.httpHost
    const hostIp = parseIp(host)
    const out: InterfaceInfo[] = []
    for (const nic of this.o.nics.list()) {
      if (out.length >= SSDP_INTERFACES_COUNT_MAX) break
      if (nic.role !== 'lan' || !nic.up || !nic.multicast) continue
      const v4 = nic.addresses.find((a) => a.family === 4)
      if (v4 === undefined) continue
      if (!WILDCARD.has(host) && !(hostIp !== null && nic.addresses.some((a) => a.address === formatIp(hostIp)))) continue
      out.push({ nic: nic.name, address: v4.address, prefixLength: v4.prefixLength })
    }
    return out
  }

  private refresh (): void {
    if (!this.running) return
    this.reconcile().catch((err: unknown) => { this.o.log.warn('SSDP interface update failed', { err }) })
  }

  /** Open, close or reopen interface sockets to match eligible(); one pass at a time. */
  private reconcile (): Promise<void> {
    this.reconciling = this.reconciling.then(() => this.reconcileNow())
    return this.reconciling
  }

  private async reconcileNow (): Promise<void> {
    if (!this.running) return
    const wanted = new Map(this.eligible().map((i) => [i.nic, i]))
    for (const [name, iface] of this.ifaces) {
      const w = wanted.get(name)
      if (w === undefined || w.address !== iface.info.address || w.prefixLength !== iface.info.prefixLength) {
        // Gone, no longer LAN, or readdressed: nothing more is sent on it (a byebye could reach the WAN).
        iface.close(this.o.log)
        this.ifaces.delete(name)
        this.o.log.info('SSDP stopped on interface', { nic: name, address: iface.info.address })
      }
    }
    let failed = false
    for (const [name, info] of wanted) {
      if (this.ifaces.has(name) || !this.running) continue
      try {
        const iface = await SsdpInterface.open(this.o.net, info, this.group, this.port, (d, socket, i) => { this.onDatagram(d, socket, i) })
        if (!this.running) { iface.close(this.o.log); return }
        this.ifaces.set(name, iface)
        this.o.log.info('SSDP on interface', { nic: name, address: info.address })
        this.startRound(iface)
      } catch (err) {
        failed = true
        this.stats.interfaceErrors++
        this.o.log.warn('SSDP cannot use interface', { nic: name, address: info.address, err })
      }
    }
    // A join fails while an interface is still coming up, a bind while another
    // daemon holds 1900 without SO_REUSEADDR: try again, less and less often.
    this.retry?.cancel()
    this.retry = null
    this.openFailures = failed ? this.openFailures + 1 : 0
    if (failed) {
      const delay = Math.min(SSDP_INTERFACE_RETRY_MS_MAX, NIC_POLL_MS * 2 ** Math.min(10, this.openFailures - 1))
      this.retry = this.timers.setTimeout(() => { this.refresh() }, delay)
    }
  }

  // ---- sending -------------------------------------------------------------------

  private advertFor (iface: SsdpInterface): Advert {
    return {
      nodeId: this.o.nodeId,
      location: `http://${iface.info.address}:${this.o.httpPort}${DESCRIBE_PATH}`,
      maxAgeSeconds: this.o.maxAgeSeconds,
      server: this.o.server,
      bootId: this.bootId,
      configId: this.o.configId()
    }
  }

  private announceOn (iface: SsdpInterface): void {
    if (iface.sendFromListener(buildAlive(this.advertFor(iface)), this.port, this.group)) this.stats.datagramsOut.notify++
  }

  private searchOn (iface: SsdpInterface): void {
    if (iface.sendFromSearcher(buildSearch(CANOPY_DEVICE_TYPE, SSDP_SEARCH_MX_SECONDS), this.port, this.group)) this.stats.datagramsOut.search++
  }

  /** On a new interface: alive and search now, repeated a few times a second apart (multicast is lossy). */
  private startRound (iface: SsdpInterface): void {
    this.announceOn(iface)
    this.searchOn(iface)
    for (let i = 1; i <= SSDP_START_REPEAT_COUNT; i++) {
      const at = i * SSDP_START_REPEAT_MS + this.o.random.int(SSDP_START_REPEAT_MS / 4)
      this.timers.setTimeout(() => {
        if (!iface.isOpen) return
        this.announceOn(iface)
        this.searchOn(iface)
      }, at)
    }
  }

  /** Periodic alive at a jittered interval (UDA: randomly distributed, well inside max-age). */
  private scheduleNotify (): void {
    const base = this.o.notifyIntervalMs
    const delay = Math.round(base * 0.9 + this.o.random.int(Math.max(1, Math.round(base * 0.2))))
    this.timers.setTimeout(() => {
      if (!this.running) return
      this.announce()
      this.scheduleNotify()
    }, delay)
  }

  // ---- receiving -------------------------------------------------------------------

  private dropped (reason: DropReason): void { this.stats.dropped[reason]++ }

  private onDatagram (d: Datagram, socket: 'listener' | 'searcher', iface: SsdpInterface): void {
    this.stats.datagramsIn++
    const bad = checkSource(this.o.nics.list(), d, iface.info)
    if (bad !== null) { this.dropped(bad); return }
    const ev = interpretSsdp(d.data)
    switch (ev.type) {
      case 'drop':
        this.dropped(ev.reason)
        return
      case 'search':
        if (socket !== 'listener') { this.dropped('unexpected'); return }
        if (d.address === iface.info.address && d.port === iface.searchPort) { this.dropped('self'); return }
        this.answer(ev.st, ev.mxSeconds, d, iface)
        return
      case 'alive':
        if (ev.nodeId === this.o.nodeId) { this.dropped('self'); return }
        // LOCATION is fetched only from the host that sent the datagram (no reflection through us).
        if (ev.location.host !== d.address) { this.dropped('location-mismatch'); return }
        this.stats.heard[ev.via]++
        this.emit({ ...ev, source: d.address, nic: iface.info.nic })
        return
      case 'byebye':
        if (ev.nodeId === this.o.nodeId) { this.dropped('self'); return }
        this.stats.heard.byebye++
        this.emit({ type: 'byebye', nodeId: ev.nodeId, source: d.address, nic: iface.info.nic })
    }
  }

  private answer (st: string, mxSeconds: number, d: Datagram, iface: SsdpInterface): void {
    const type = answerType(st, this.o.nodeId)
    if (type === null) { this.dropped('not-ours'); return }
    if (this.pendingReplies >= SSDP_PENDING_REPLIES_COUNT_MAX) { this.dropped('pending-full'); return }
    if (!this.limiter.allow(d.address, this.o.clock.nowMs())) {
      this.stats.repliesRateLimited++
      this.dropped('rate-limited')
      return
    }
    const reply = buildReply(type, this.advertFor(iface), replyBudget(d.data.length))
    if (reply === null) { this.dropped('reply-too-large'); return }
    this.pendingReplies++
    const delayMs = this.o.random.int(mxSeconds * 1000 + 1)
    this.timers.setTimeout(() => {
      this.pendingReplies--
      if (this.running && iface.sendFromListener(reply, d.port, d.address)) this.stats.datagramsOut.reply++
    }, delayMs)
  }

  private emit (a: Announcement): void {
    for (const l of [...this.listeners]) {
      try {
        l(a)
      } catch (err) {
        this.o.log.error('announcement listener failed', { err })
      }
    }
  }
}
