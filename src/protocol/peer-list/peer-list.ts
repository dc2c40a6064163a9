// The peer list: the LAN address book behind the PeerDirectory contract.
// Only verified peers enter (discovery checks the signed self-description
// first). Bounded: when full, a new peer evicts the stalest entry (oldest
// sign of life); and one address holds at most PEERS_PER_ADDRESS_COUNT_MAX
// node ids (a newcomer there evicts that address's stalest), so one host
// minting keys cannot push the rest of the LAN out. Entries expire at their expiresMs on the HAL clock (SSDP
// max-age, or a static peer's re-check window); sweep() removes them.
//
// Events: 'added' for a new node id, 'updated' when what a peer offers
// changed (address, ports, key, name, version, capabilities), 'removed' on
// byebye, expiry or eviction. A mere refresh (same peer, later expiry) updates
// lastSeenMs/expiresMs silently: listeners are not woken every NOTIFY.

import { assert } from '../../errors'
import type { Clock } from '../../hal'
import { PEERS_COUNT_MAX, PEERS_PER_ADDRESS_COUNT_MAX } from '../../limits'
import type { Logger } from '../../log'
import { listeners } from '../listeners'
import type { PeerDirectory, PeerEvent, PeerInfo } from '../peers'

/** How a peer was found; not part of PeerInfo (the contract), shown by /api/peers. */
export interface PeerOrigin {
  via: 'ssdp' | 'static'
  /** The URL its self-description was fetched from. */
  location: string
  /** The LAN interface it was heard on (SSDP), or null. */
  nic: string | null
  /** BOOTID.UPNP.ORG and CONFIGID.UPNP.ORG of the announcement that was verified: a change means fetch again. */
  bootId: number | null
  configId: number | null
}

export type RemoveReason = 'byebye' | 'expired' | 'evicted'

/** In-process only: the peer and where we heard of it. */
interface Entry { p: PeerInfo, o: PeerOrigin }

/** What a peer offers: a change is an 'updated' event. */
const offerOf = (p: PeerInfo): string =>
  JSON.stringify([p.address, p.httpPort, p.udpPort, p.linkPort, p.name, p.version, p.publicKey.toString('hex'), p.capabilities])

export interface PeerList extends PeerDirectory {
  readonly countMax: number
  readonly stats: { removed: Record<RemoveReason, number> }
  readonly size: number
  origin (nodeId: string): PeerOrigin | undefined
  /** Add or refresh a verified peer. */
  upsert (peer: PeerInfo, origin: PeerOrigin): 'added' | 'updated' | 'refreshed'
  /** A sign of life from a listed peer: push its expiry out (never in). False when not listed. */
  touch (nodeId: string, expiresMs: number): boolean
  remove (nodeId: string, reason: RemoveReason): boolean
  /** Remove every entry whose expiry has passed; returns how many. */
  sweep (): number
}

export function peerList (clock: Clock, log: Logger, countMax = PEERS_COUNT_MAX): PeerList {
  assert(countMax >= 1, 'peer list bound >= 1')
  const entries = new Map<string, Entry>()
  const events = listeners<PeerEvent>(log, 'peer listener')
  const stats = { removed: { byebye: 0, expired: 0, evicted: 0 } }

  const evictStalest = (among: Iterable<Entry>): void => {
    let stalest: Entry | undefined
    for (const e of among) {
      if (!stalest || e.p.lastSeenMs < stalest.p.lastSeenMs) stalest = e
    }
    if (stalest) list.remove(stalest.p.nodeId, 'evicted')
  }

  const list: PeerList = {
    countMax,
    stats,
    list: () => [...entries.values()].map((e) => e.p),
    get: (nodeId) => entries.get(nodeId)?.p,
    origin: (nodeId) => entries.get(nodeId)?.o,
    get size () { return entries.size },
    on: (listener) => events.on(listener),

    upsert (peer, origin) {
      const old = entries.get(peer.nodeId)
      if (old) {
        // A static peer stays static when SSDP also hears it; the later expiry wins.
        const merged: PeerInfo = { ...peer, expiresMs: Math.max(old.p.expiresMs, peer.expiresMs) }
        const o = old.o
        const mergedOrigin: PeerOrigin = {
          ...origin,
          via: o.via === 'static' ? 'static' : origin.via,
          nic: origin.nic ?? o.nic,
          bootId: origin.bootId ?? o.bootId,
          configId: origin.configId ?? o.configId
        }
        entries.set(peer.nodeId, { p: merged, o: mergedOrigin })
        if (offerOf(old.p) === offerOf(peer)) return 'refreshed'
        events.emit({ type: 'updated', peer: merged })
        return 'updated'
      }
      const sameAddress = [...entries.values()].filter((e) => e.p.address === peer.address)
      if (sameAddress.length >= PEERS_PER_ADDRESS_COUNT_MAX) evictStalest(sameAddress)
      else if (entries.size >= countMax) evictStalest(entries.values())
      entries.set(peer.nodeId, { p: peer, o: origin })
      events.emit({ type: 'added', peer })
      return 'added'
    },

    touch (nodeId, expiresMs) {
      const e = entries.get(nodeId)
      if (!e) return false
      e.p = { ...e.p, lastSeenMs: clock.nowMs(), expiresMs: Math.max(e.p.expiresMs, expiresMs) }
      return true
    },

    remove (nodeId, reason) {
      const e = entries.get(nodeId)
      if (!e) return false
      entries.delete(nodeId)
      stats.removed[reason]++
      log.info('peer removed', { nodeId, reason, address: e.p.address })
      events.emit({ type: 'removed', peer: e.p })
      return true
    },

    sweep () {
      const now = clock.nowMs()
      let n = 0
      for (const [id, e] of [...entries]) {
        if (e.p.expiresMs <= now && list.remove(id, 'expired')) n++
      }
      return n
    }
  }
  return list
}
