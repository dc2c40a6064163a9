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
import { Listeners } from '../listeners'
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

interface Entry { peer: PeerInfo, origin: PeerOrigin }

/** What a peer offers: a change is an 'updated' event. */
const offerOf = (p: PeerInfo): string =>
  JSON.stringify([p.address, p.httpPort, p.udpPort, p.linkPort, p.name, p.version, p.publicKey.toString('hex'), p.capabilities])

export class PeerList implements PeerDirectory {
  readonly stats = { removed: { byebye: 0, expired: 0, evicted: 0 } as Record<RemoveReason, number> }
  readonly #entries = new Map<string, Entry>()
  readonly #listeners: Listeners<PeerEvent>

  readonly #clock: Clock
  readonly #log: Logger
  constructor (clock: Clock, log: Logger, readonly countMax = PEERS_COUNT_MAX) {
    this.#clock = clock
    this.#log = log
    this.#listeners = new Listeners(log, 'peer listener')
    assert(countMax >= 1, 'peer list bound >= 1')
  }

  list (): readonly PeerInfo[] { return [...this.#entries.values()].map((e) => e.peer) }
  get (nodeId: string): PeerInfo | undefined { return this.#entries.get(nodeId)?.peer }
  origin (nodeId: string): PeerOrigin | undefined { return this.#entries.get(nodeId)?.origin }
  get size (): number { return this.#entries.size }

  on (listener: (e: PeerEvent) => void): () => void { return this.#listeners.on(listener) }

  /** Add or refresh a verified peer. */
  upsert (peer: PeerInfo, origin: PeerOrigin): 'added' | 'updated' | 'refreshed' {
    const old = this.#entries.get(peer.nodeId)
    if (old !== undefined) {
            // A static peer stays static when SSDP also hears it; the later expiry wins.
      const merged: PeerInfo = { ...peer, expiresMs: Math.max(old.peer.expiresMs, peer.expiresMs) }
      const mergedOrigin: PeerOrigin = {
        ...origin,
        via: old.origin.via === 'static' ? 'static' : origin.via,
        nic: origin.nic ?? old.origin.nic,
        bootId: origin.bootId ?? old.origin.bootId,
        configId: origin.configId ?? old.origin.configId
      }
      this.#entries.set(peer.nodeId, { peer: merged, origin: mergedOrigin })
      if (offerOf(old.peer) === offerOf(peer)) return 'refreshed'
      this.#listeners.emit({ type: 'updated', peer: merged })
      return 'updated'
    }
    const sameAddress = [...this.#entries.values()].filter((e) => e.peer.address === peer.address)
    if (sameAddress.length >= PEERS_PER_ADDRESS_COUNT_MAX) this.#evictStalest(sameAddress)
    else if (this.#entries.size >= this.countMax) this.#evictStalest(this.#entries.values())
    this.#entries.set(peer.nodeId, { peer, origin })
    this.#listeners.emit({ type: 'added', peer })
    return 'added'
  }

  /** A sign of life from a listed peer: push its expiry out (never in). False when not listed. */
  touch (nodeId: string, expiresMs: number): boolean {
    const e = this.#entries.get(nodeId)
    if (e === undefined) return false
    e.peer = { ...e.peer, lastSeenMs: this.#clock.nowMs(), expiresMs: Math.max(e.peer.expiresMs, expiresMs) }
    return true
  }

  remove (nodeId: string, reason: RemoveReason): boolean {
    const e = this.#entries.get(nodeId)
    if (e === undefined) return false
    this.#entries.delete(nodeId)
    this.stats.removed[reason]++
    this.#log.info('peer removed', { nodeId, reason, address: e.peer.address })
    this.#listeners.emit({ type: 'removed', peer: e.peer })
    return true
  }

  /** Remove every entry whose expiry has passed; returns how many. */
  sweep (): number {
    const now = this.#clock.nowMs()
    let n = 0
    for (const [id, e] of [...this.#entries]) {
      if (e.peer.expiresMs <= now && this.remove(id, 'expired')) n++
    }
    return n
  }

  #evictStalest (among: Iterable<Entry>): void {
    let stalest: Entry | undefined
    for (const e of among) {
      if (stalest === undefined || e.peer.lastSeenMs < stalest.peer.lastSeenMs) stalest = e
    }
    if (stalest !== undefined) this.remove(stalest.peer.nodeId, 'evicted')
  }
}
