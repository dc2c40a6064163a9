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
import {
  NIC_POLL_MS, SSDP_INTERFACE_RETRY_MS_MAX, SSDP_INTERFACES_COUNT_MAX, SSDP_PENDING_REPLIES_COUNT_MAX, SSDP_RATE_SOURCES_COUNT_MAX,
  SSDP_REPLIES_PER_SECOND_MAX, SSDP_SEARCH_MX_SECONDS, SSDP_SOURCE_REPLIES_BURST, SSDP_SOURCE_REPLIES_PER_SECOND, SSDP_START_REPEAT_COUNT, SSDP_START_REPEAT_MS
} from '../../limits'
import type { Logger } from '../../log'
import { RateGate, type RateLimits } from '../rate'
import { zeroes } from '../counts'
import { listeners, type Listeners } from '../listeners'
import { LISTENER, SEARCHER, openInterface, type InterfaceInfo, type SsdpInterface } from './interface'
import { DROP_REASONS, interpretSsdp, type DropReason, type SsdpEvent } from './interpret'
import { answerType, buildAlive, buildByebye, buildReply, buildSearch, replyBudget, type Advert } from './messages'
import { CANOPY_DEVICE_TYPE, DESCRIBE_PATH, SSDP_GROUP, SSDP_PORT, type Location } from './names'
import { checkSource } from './source'

/** Search replies: per source 1 a second in bursts of 3, 20 a second in all. */
export const SSDP_REPLY_LIMITS: RateLimits = {
  sourcePerSecond: SSDP_SOURCE_REPLIES_PER_SECOND,
  sourceBurst: SSDP_SOURCE_REPLIES_BURST,
  totalPerSecond: SSDP_REPLIES_PER_SECOND_MAX,
  sourcesMax: SSDP_RATE_SOURCES_COUNT_MAX
}

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
  limits?: RateLimits
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

const WILDCARD = ['0.0.0.0', '::', '', '*']

export class Ssdp {
  readonly stats: SsdpStats = {
    datagramsIn: 0,
    datagramsOut: { notify: 0, byebye: 0, search: 0, reply: 0 },
    heard: { notify: 0, reply: 0, byebye: 0 },
    dropped: zeroes(DROP_REASONS),
    repliesRateLimited: 0,
    interfaceErrors: 0
  }

  readonly #ifaces = new Map<string, SsdpInterface>()
  readonly #timers: TimerGroup
  readonly #limiter: RateGate
  readonly #listeners: Listeners<Announcement>
  #off: (() => void) | undefined
  #reconciling = Promise.resolve()
  #pending = 0
  #running = false
  /** Consecutive passes in which some interface could not be opened (port 1900 taken, interface still coming up). */
  #openFailures = 0
  #retry: Timer | undefined
  readonly #bootId: number

  constructor (private readonly o: SsdpOptions) {
    this.#bootId = o.random.int(0x7fffffff)
    this.#timers = new TimerGroup(o.clock)
    this.#limiter = new RateGate(o.clock.nowMs(), o.limits ?? SSDP_REPLY_LIMITS)
    this.#listeners = listeners(o.log, 'announcement listener')
  }

  onAnnouncement (fn: (a: Announcement) => void): () => void { return this.#listeners.on(fn) }

  async start (): Promise<void> {
    if (this.#running) return
    this.#running = true
    this.#off = this.o.nics.on(() => { this.#refresh() })
    await this.#reconcile()
    this.#scheduleNotify()
  }

  /** Byebye on every interface, then close every socket and timer. */
  async stop (): Promise<void> {
    if (!this.#running) return
    this.#running = false
    this.#off?.()
    this.#timers.clearAll()
    await this.#reconciling
    const bye = buildByebye(this.o.nodeId)
    const ifaces = [...this.#ifaces.values()]
    for (const i of ifaces) if (i.send(LISTENER, bye)) this.stats.datagramsOut.byebye++
    await Promise.all(ifaces.map((i) => i.flush()))
    for (const i of ifaces) i.close(this.o.log)
    this.#ifaces.clear()
  }

  /** M-SEARCH for Canopy agents on every interface now. */
  search (): void {
    for (const i of this.#ifaces.values()) this.#searchOn(i)
  }

  /** NOTIFY alive on every interface now. */
  announce (): void {
    for (const i of this.#ifaces.values()) this.#announceOn(i)
  }

  interfaces (): Array<InterfaceInfo & { location: string, searchPort: number }> {
    return [...this.#ifaces.values()].map((i) => ({ ...i.info, location: this.#advertFor(i).location, searchPort: i.searchPort }))
  }

  get pending (): number { return this.#pending }

  // ---- interfaces ------------------------------------------------------------

  /** The interfaces we should serve now: LAN, up, multicast, with IPv4, allowed by the HTTP listen address. */
  eligible (): InterfaceInfo[] {
    const host = this.o.httpHost
    const hostIp = parseIp(host)
    const own = hostIp === null ? null : formatIp(hostIp)
    const out: InterfaceInfo[] = []
    for (const nic of this.o.nics.list()) {
      const v4 = nic.addresses.find((a) => a.family === 4)
      if (out.length >= SSDP_INTERFACES_COUNT_MAX) break
      if (nic.role !== 'lan' || !nic.up || !nic.multicast || v4 === undefined) continue
      if (WILDCARD.includes(host) || nic.addresses.some((a) => a.address === own)) out.push({ nic: nic.name, address: v4.address, prefixLength: v4.prefixLength })
    }
    return out
  }

  #refresh (): void {
    if (this.#running) this.#reconcile().catch((err: unknown) => { this.o.log.warn('SSDP interface update failed', { err }) })
  }

  /** Open, close or reopen interface sockets to match eligible(); one pass at a time. */
  #reconcile (): Promise<void> {
    return (this.#reconciling = this.#reconciling.then(() => this.#reconcileNow()))
  }

  async #reconcileNow (): Promise<void> {
    if (!this.#running) return
    const { log } = this.o
    const wanted = new Map(this.eligible().map((i) => [i.nic, i]))
    for (const [name, iface] of this.#ifaces) {
      const w = wanted.get(name)
      if (w?.address !== iface.info.address || w.prefixLength !== iface.info.prefixLength) {
        // Gone, no longer LAN, or readdressed: nothing more is sent on it (a byebye could reach the WAN).
        iface.close(log)
        this.#ifaces.delete(name)
        log.info('SSDP stopped on interface', { nic: name, address: iface.info.address })
      }
    }
    let failed = false
    for (const [name, info] of wanted) {
      if (this.#ifaces.has(name) || !this.#running) continue
      try {
        const iface = await openInterface(this.o.net, info, this.o.group ?? SSDP_GROUP, this.o.port ?? SSDP_PORT, (d, socket, i) => { this.#onDatagram(d, socket, i) })
        if (!this.#running) { iface.close(log); return }
        this.#ifaces.set(name, iface)
        log.info('SSDP on interface', { nic: name, address: info.address })
        this.#startRound(iface)
      } catch (err) {
        failed = true
        this.stats.interfaceErrors++
        log.warn('SSDP cannot use interface', { nic: name, address: info.address, err })
      }
    }
    // A join fails while an interface is still coming up, a bind while another
    // daemon holds 1900 without SO_REUSEADDR: try again, less and less often.
    this.#retry?.cancel()
    this.#openFailures = failed ? this.#openFailures + 1 : 0
    this.#retry = failed
      ? this.#timers.setTimeout(() => { this.#refresh() }, Math.min(SSDP_INTERFACE_RETRY_MS_MAX, NIC_POLL_MS * 2 ** Math.min(10, this.#openFailures - 1)))
      : undefined
  }

  // ---- sending -------------------------------------------------------------------

  #advertFor (iface: SsdpInterface): Advert {
    const o = this.o
    return {
      nodeId: o.nodeId,
      location: `http://${iface.info.address}:${o.httpPort}${DESCRIBE_PATH}`,
      maxAgeSeconds: o.maxAgeSeconds,
      server: o.server,
      bootId: this.#bootId,
      configId: o.configId()
    }
  }

  #announceOn (iface: SsdpInterface): void {
    if (iface.send(LISTENER, buildAlive(this.#advertFor(iface)))) this.stats.datagramsOut.notify++
  }

  #searchOn (iface: SsdpInterface): void {
    if (iface.send(SEARCHER, buildSearch(CANOPY_DEVICE_TYPE, SSDP_SEARCH_MX_SECONDS))) this.stats.datagramsOut.search++
  }

  /** On a new interface: alive and search now, repeated a few times a second apart (multicast is lossy). */
  #startRound (iface: SsdpInterface): void {
    for (let i = 0; i <= SSDP_START_REPEAT_COUNT; i++) {
      const round = (): void => {
        if (!iface.isOpen) return
        this.#announceOn(iface)
        this.#searchOn(iface)
      }
      if (i === 0) round()
      else this.#timers.setTimeout(round, i * SSDP_START_REPEAT_MS + this.o.random.int(SSDP_START_REPEAT_MS / 4))
    }
  }

  /** Periodic alive at a jittered interval (UDA: randomly distributed, well inside max-age). */
  #scheduleNotify (): void {
    const base = this.o.notifyIntervalMs
    this.#timers.setTimeout(() => {
      if (!this.#running) return
      this.announce()
      this.#scheduleNotify()
    }, Math.round(base * 0.9 + this.o.random.int(Math.max(1, Math.round(base * 0.2)))))
  }

  // ---- receiving -------------------------------------------------------------------

  #onDatagram (d: Datagram, socket: number, iface: SsdpInterface): void {
    const { stats } = this
    const nic = iface.info.nic
    stats.datagramsIn++
    // Who sent it first: nothing from outside this interface's LAN prefixes is even parsed.
    const bad = checkSource(this.o.nics.list(), d, iface.info)
    const ev: SsdpEvent = bad === null ? interpretSsdp(d.data) : { type: 'drop', reason: bad }
    let drop = ev.type === 'drop' ? ev.reason : null
    if (ev.type === 'search') {
      // Searches come to port 1900; our own (looped back) are not answered.
      if (socket !== LISTENER) drop = 'unexpected'
      else if (d.address === iface.info.address && d.port === iface.searchPort) drop = 'self'
    } else if (ev.type !== 'drop') {
      if (ev.nodeId === this.o.nodeId) drop = 'self'
      // LOCATION is fetched only from the host that sent the datagram (no reflection through us).
      else if (ev.type === 'alive' && ev.location.host !== d.address) drop = 'location-mismatch'
    }
    if (drop !== null) stats.dropped[drop]++
    else if (ev.type === 'search') this.#answer(ev.st, ev.mxSeconds, d, iface)
    else if (ev.type === 'alive') {
      stats.heard[ev.via]++
      this.#listeners.emit({ ...ev, source: d.address, nic })
    } else if (ev.type === 'byebye') {
      stats.heard.byebye++
      this.#listeners.emit({ type: 'byebye', nodeId: ev.nodeId, source: d.address, nic })
    }
  }

  #answer (st: string, mxSeconds: number, d: Datagram, iface: SsdpInterface): void {
    const { stats } = this
    const type = answerType(st, this.o.nodeId)
    let drop: DropReason | null = type === null ? 'not-ours' : this.#pending >= SSDP_PENDING_REPLIES_COUNT_MAX ? 'pending-full' : null
    if (drop === null && !this.#limiter.allow(d.address, this.o.clock.nowMs())) {
      stats.repliesRateLimited++
      drop = 'rate-limited'
    }
    const reply = drop === null ? buildReply(type!, this.#advertFor(iface), replyBudget(d.data.length)) : null
    if (reply === null) {
      stats.dropped[drop ?? 'reply-too-large']++
      return
    }
    this.#pending++
    this.#timers.setTimeout(() => {
      this.#pending--
      if (this.#running && iface.send(LISTENER, reply, d.port, d.address)) stats.datagramsOut.reply++
    }, this.o.random.int(mxSeconds * 1000 + 1))
  }
}
