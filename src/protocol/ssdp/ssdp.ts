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
import { rateGate, type RateLimits } from '../rate'
import { zeroes } from '../counts'
import { listeners } from '../listeners'
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

export interface Ssdp {
  readonly stats: SsdpStats
  /** Replies waiting for their random delay. */
  readonly pending: number
  onAnnouncement (fn: (a: Announcement) => void): () => void
  start (): Promise<void>
  /** Byebye on every interface, then close every socket and timer. */
  stop (): Promise<void>
  /** M-SEARCH for Canopy agents on every interface now. */
  search (): void
  /** NOTIFY alive on every interface now. */
  announce (): void
  interfaces (): Array<InterfaceInfo & { location: string, searchPort: number }>
  /** The interfaces we should serve now: LAN, up, multicast, with IPv4, allowed by the HTTP listen address. */
  eligible (): InterfaceInfo[]
}

/** Every count at zero (also what the metrics show while SSDP is not running). */
export const zeroSsdpStats = (): SsdpStats => ({
  datagramsIn: 0,
  datagramsOut: { notify: 0, byebye: 0, search: 0, reply: 0 },
  heard: { notify: 0, reply: 0, byebye: 0 },
  dropped: zeroes(DROP_REASONS),
  repliesRateLimited: 0,
  interfaceErrors: 0
})

export function createSsdp (o: SsdpOptions): Ssdp {
  const stats = zeroSsdpStats()
  const { log, random } = o
  const ifaces = new Map<string, SsdpInterface>()
  const timers = new TimerGroup(o.clock)
  const limiter = rateGate(o.clock.nowMs(), o.limits ?? SSDP_REPLY_LIMITS)
  const events = listeners<Announcement>(log, 'announcement listener')
  const bootId = random.int(0x7fffffff)
  let off: (() => void) | undefined
  let reconciling = Promise.resolve()
  let pending = 0
  let running = false
  /** Consecutive passes in which some interface could not be opened (port 1900 taken, interface still coming up). */
  let openFailures = 0
  let retry: Timer | undefined

  const location = (iface: SsdpInterface): string => `http://${iface.at.address}:${o.httpPort}${DESCRIBE_PATH}`

  const advertFor = (iface: SsdpInterface): Advert =>
    ({ nodeId: o.nodeId, location: location(iface), maxAgeSeconds: o.maxAgeSeconds, server: o.server, bootId, configId: o.configId() })

  const announceOn = (iface: SsdpInterface): void => {
    if (iface.send(LISTENER, buildAlive(advertFor(iface)))) stats.datagramsOut.notify++
  }

  const searchOn = (iface: SsdpInterface): void => {
    if (iface.send(SEARCHER, buildSearch(CANOPY_DEVICE_TYPE, SSDP_SEARCH_MX_SECONDS))) stats.datagramsOut.search++
  }

  /** On a new interface: alive and search now, repeated a few times a second apart (multicast is lossy). */
  const startRound = (iface: SsdpInterface): void => {
    const round = (): void => {
      if (!iface.isOpen) return
      announceOn(iface)
      searchOn(iface)
    }
    round()
    for (let i = 1; i <= SSDP_START_REPEAT_COUNT; i++) timers.setTimeout(round, i * SSDP_START_REPEAT_MS + random.int(SSDP_START_REPEAT_MS / 4))
  }

  /** Periodic alive at a jittered interval (UDA: randomly distributed, well inside max-age). */
  const scheduleNotify = (): void => {
    const base = o.notifyIntervalMs
    timers.setTimeout(() => {
      if (!running) return
      ssdp.announce()
      scheduleNotify()
    }, Math.round(base * 0.9 + random.int(Math.max(1, Math.round(base * 0.2)))))
  }

  const answer = (st: string, mxSeconds: number, d: Datagram, iface: SsdpInterface): void => {
    const type = answerType(st, o.nodeId)
    let drop: DropReason | null = type === null ? 'not-ours' : pending >= SSDP_PENDING_REPLIES_COUNT_MAX ? 'pending-full' : null
    if (!drop && !limiter.allow(d.address, o.clock.nowMs())) {
      stats.repliesRateLimited++
      drop = 'rate-limited'
    }
    const reply = drop ? null : buildReply(type!, advertFor(iface), replyBudget(d.data.length))
    if (!reply) {
      stats.dropped[drop ?? 'reply-too-large']++
      return
    }
    pending++
    timers.setTimeout(() => {
      pending--
      if (running && iface.send(LISTENER, reply, d.port, d.address)) stats.datagramsOut.reply++
    }, random.int(mxSeconds * 1000 + 1))
  }

  const onDatagram = (d: Datagram, socket: number, iface: SsdpInterface): void => {
    const nic = iface.at.nic
    stats.datagramsIn++
    // Who sent it first: nothing from outside this interface's LAN prefixes is even parsed.
    const bad = checkSource(o.nics.list(), d, iface.at)
    const ev: SsdpEvent = bad ? { type: 'drop', reason: bad } : interpretSsdp(d.data)
    let drop = ev.type === 'drop' ? ev.reason : null
    if (ev.type === 'search') {
      // Searches come to port 1900; our own (looped back) are not answered.
      if (socket !== LISTENER) drop = 'unexpected'
      else if (d.address === iface.at.address && d.port === iface.searchPort) drop = 'self'
    } else if (ev.type !== 'drop') {
      if (ev.nodeId === o.nodeId) drop = 'self'
      // LOCATION is fetched only from the host that sent the datagram (no reflection through us).
      else if (ev.type === 'alive' && ev.location.host !== d.address) drop = 'location-mismatch'
    }
    if (drop) stats.dropped[drop]++
    else if (ev.type === 'search') answer(ev.st, ev.mxSeconds, d, iface)
    else if (ev.type === 'alive') {
      stats.heard[ev.via]++
      events.emit({ ...ev, source: d.address, nic })
    } else if (ev.type === 'byebye') {
      stats.heard.byebye++
      events.emit({ type: 'byebye', nodeId: ev.nodeId, source: d.address, nic })
    }
  }

  const reconcileNow = async (): Promise<void> => {
    if (!running) return
    const wanted = new Map(ssdp.eligible().map((i) => [i.nic, i]))
    for (const [name, iface] of ifaces) {
      const w = wanted.get(name)
      if (w?.address !== iface.at.address || w.prefixLength !== iface.at.prefixLength) {
        // Gone, no longer LAN, or readdressed: nothing more is sent on it (a byebye could reach the WAN).
        iface.close(log)
        ifaces.delete(name)
        log.info('SSDP stopped on interface', { nic: name, address: iface.at.address })
      }
    }
    let failed = false
    for (const [name, info] of wanted) {
      if (ifaces.has(name) || !running) continue
      try {
        const iface = await openInterface(o.net, info, o.group ?? SSDP_GROUP, o.port ?? SSDP_PORT, onDatagram)
        if (!running) { iface.close(log); return }
        ifaces.set(name, iface)
        log.info('SSDP on interface', { nic: name, address: info.address })
        startRound(iface)
      } catch (err) {
        failed = true
        stats.interfaceErrors++
        log.warn('SSDP cannot use interface', { nic: name, address: info.address, err })
      }
    }
    // A join fails while an interface is still coming up, a bind while another
    // daemon holds 1900 without SO_REUSEADDR: try again, less and less often.
    retry?.cancel()
    openFailures = failed ? openFailures + 1 : 0
    retry = failed
      ? timers.setTimeout(refresh, Math.min(SSDP_INTERFACE_RETRY_MS_MAX, NIC_POLL_MS * 2 ** Math.min(10, openFailures - 1)))
      : undefined
  }

  /** Open, close or reopen interface sockets to match eligible(); one pass at a time. */
  const reconcile = (): Promise<void> => (reconciling = reconciling.then(reconcileNow))

  function refresh (): void {
    if (running) reconcile().catch((err: unknown) => { log.warn('SSDP interface update failed', { err }) })
  }

  const ssdp: Ssdp = {
    stats,
    get pending () { return pending },
    onAnnouncement: (fn) => events.on(fn),

    async start () {
      if (running) return
      running = true
      off = o.nics.on(refresh)
      await reconcile()
      scheduleNotify()
    },

    async stop () {
      if (!running) return
      running = false
      off?.()
      timers.clearAll()
      await reconciling
      const bye = buildByebye(o.nodeId)
      const all = [...ifaces.values()]
      for (const i of all) if (i.send(LISTENER, bye)) stats.datagramsOut.byebye++
      await Promise.all(all.map((i) => i.flush()))
      for (const i of all) i.close(log)
      ifaces.clear()
    },

    search () { for (const i of ifaces.values()) searchOn(i) },
    announce () { for (const i of ifaces.values()) announceOn(i) },

    interfaces: () => [...ifaces.values()].map((i) => ({ ...i.at, location: location(i), searchPort: i.searchPort })),

    eligible () {
      const host = o.httpHost
      const hostIp = parseIp(host)
      const own = hostIp && formatIp(hostIp)
      const out: InterfaceInfo[] = []
      for (const nic of o.nics.list()) {
        const v4 = nic.addresses.find((a) => a.family === 4)
        if (out.length >= SSDP_INTERFACES_COUNT_MAX) break
        if (nic.role !== 'lan' || !nic.up || !nic.multicast || !v4) continue
        if (WILDCARD.includes(host) || nic.addresses.some((a) => a.address === own)) out.push({ nic: nic.name, address: v4.address, prefixLength: v4.prefixLength })
      }
      return out
    }
  }
  return ssdp
}
