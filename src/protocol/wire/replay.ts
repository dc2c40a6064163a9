// Replay rejection per sender, as WireGuard does (RFC 6479's ring of bitmap
// words): the highest counter seen plus a bitmap of the REPLAY_WINDOW_COUNT
// values below it. Anything at or below the window's floor, or already marked,
// is a replay; anything above the top moves the window. No wall clock is
// involved (routers without an RTC boot in 1970).
//
// check() is pure and cheap (before the signature check); commit() marks a
// counter once the signature verified, so forged datagrams cannot move a
// window.

import { REPLAY_RING_BITS, REPLAY_WINDOW_COUNT } from '../../limits'

const WORDS = REPLAY_RING_BITS / 32

export class ReplayWindow {
  /** Highest counter accepted (0: none yet). */
  top: number
  readonly #ring = new Uint32Array(WORDS)

  /** A window that already rejects everything up to `floor` (state restored after a restart). */
  constructor (floor = 0) {
    this.top = floor
    if (floor > 0) {
      this.#ring.fill(0xffff_ffff)
      // In the top's own word only the values up to the floor are taken.
      const bit = floor % 32
      this.#ring[Math.floor(floor / 32) % WORDS] = bit === 31 ? 0xffff_ffff : (2 ** (bit + 1)) - 1
    }
  }

  /** Would this counter be accepted? */
  check (counter: number): boolean {
    if (counter <= 0) return false
    if (counter > this.top) return true
    if (counter + REPLAY_WINDOW_COUNT <= this.top) return false
    const word = Math.floor(counter / 32) % WORDS
    return (this.#ring[word]! & (1 << (counter % 32))) === 0
  }

  /** Mark a counter as seen (call only after check() said yes and the signature verified). */
  commit (counter: number): void {
    if (counter > this.top) {
      const current = Math.floor(this.top / 32)
      const next = Math.floor(counter / 32)
      const clear = Math.min(next - current, WORDS)
      for (let i = 1; i <= clear; i++) this.#ring[(current + i) % WORDS] = 0
      this.top = counter
    }
    this.#ring[Math.floor(counter / 32) % WORDS]! |= 1 << (counter % 32)
  }
}

export interface ReplayMark { key: string, top: number }

/**
 * Windows for a bounded number of senders (keyed by their public key, hex).
 * At the bound the least recently heard sender that `keep` does not protect
 * (the peer list's members are protected) is forgotten; its old messages
 * could then be accepted once more, which is why the bound is generous and
 * counted.
 */
export class ReplayTable {
  readonly #windows = new Map<string, ReplayWindow>()
  evictions = 0

  readonly #sendersMax: number
  readonly #keep: (key: string) => boolean

  constructor (sendersMax: number, keep: (key: string) => boolean = () => false) {
    this.#sendersMax = sendersMax
    this.#keep = keep
  }

  get size (): number { return this.#windows.size }

  check (key: string, counter: number): boolean {
    const w = this.#windows.get(key)
    return w === undefined ? counter > 0 : w.check(counter)
  }

  commit (key: string, counter: number): void {
    let w = this.#windows.get(key)
    if (w === undefined) {
      if (this.#windows.size >= this.#sendersMax) this.#evictOne()
      w = new ReplayWindow()
    } else {
      this.#windows.delete(key) // re-insert: Map order is recency order
    }
    w.commit(counter)
    this.#windows.set(key, w)
  }

  /** The most recently heard senders' tops, newest first. */
  marks (countMax: number): ReplayMark[] {
    const all = [...this.#windows].reverse().slice(0, countMax)
    return all.map(([key, w]) => ({ key, top: w.top }))
  }

  /** After a restart: reject everything at or below each remembered top. */
  restore (marks: readonly ReplayMark[]): void {
    for (const m of [...marks].reverse()) {
      const existing = this.#windows.get(m.key)
      if (existing !== undefined && existing.top >= m.top) continue
      if (existing === undefined && this.#windows.size >= this.#sendersMax) this.#evictOne()
      this.#windows.delete(m.key)
      this.#windows.set(m.key, new ReplayWindow(m.top))
    }
  }

  #evictOne (): void {
    let victim: string | undefined
    for (const k of this.#windows.keys()) {
      if (!this.#keep(k)) { victim = k; break }
    }
    victim ??= this.#windows.keys().next().value as string
    this.#windows.delete(victim)
    this.evictions++
  }
}
