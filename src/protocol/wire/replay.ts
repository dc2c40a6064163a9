// Replay rejection per sender, as WireGuard does: the highest counter seen
// plus a bitmap of the REPLAY_WINDOW_COUNT values below it (here one bigint,
// bit i for counter top - i). Anything at or below the window's floor, or
// already marked, is a replay; anything above the top moves the window. No
// wall clock is involved (routers without an RTC boot in 1970).
//
// check() is pure and cheap (before the signature check); commit() marks a
// counter once the signature verified, so forged datagrams cannot move a
// window.

import { REPLAY_WINDOW_COUNT } from '../../limits'

const WINDOW = BigInt(REPLAY_WINDOW_COUNT)
const ALL = (1n << WINDOW) - 1n

export interface ReplayWindow {
  /** Highest counter accepted (0: none yet). */
  readonly top: number
  /** Would this counter be accepted? */
  check (counter: number): boolean
  /** Mark a counter as seen (call only after check() said yes and the signature verified). */
  commit (counter: number): void
}

/** A window that already rejects everything up to `floor` (state restored after a restart). */
export function replayWindow (floor = 0): ReplayWindow {
  let top = floor
  /** Bit i set: counter top - i was seen. */
  let seen = floor > 0 ? ALL : 0n
  return {
    get top () { return top },
    check (counter) {
      const back = top - counter
      return counter > 0 && (back < 0 || (back < REPLAY_WINDOW_COUNT && ((seen >> BigInt(back)) & 1n) === 0n))
    },
    commit (counter) {
      const back = top - counter
      if (back >= 0) {
        seen |= 1n << BigInt(back)
        return
      }
      // Counters are below 2^53: the shift is exact; a jump past the window leaves only the new top.
      seen = -back >= REPLAY_WINDOW_COUNT ? 1n : ((seen << BigInt(-back)) | 1n) & ALL
      top = counter
    }
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
export interface ReplayTable {
  readonly size: number
  /** Senders forgotten at the bound. */
  readonly evictions: number
  check: (key: string, counter: number) => boolean
  commit: (key: string, counter: number) => void
  /** The most recently heard senders' tops, newest first. */
  marks: (countMax: number) => ReplayMark[]
  /** After a restart: reject everything at or below each remembered top. */
  restore: (marks: readonly ReplayMark[]) => void
}

export function replayTable (sendersMax: number, keep: (key: string) => boolean = () => false): ReplayTable {
  /** Map order is recency order: a sender heard again is re-inserted. */
  const windows = new Map<string, ReplayWindow>()
  let evictions = 0

  const evictOne = (): void => {
    let victim: string | undefined
    for (const k of windows.keys()) {
      if (!keep(k)) { victim = k; break }
    }
    victim ??= windows.keys().next().value as string
    windows.delete(victim)
    evictions++
  }

  return {
    get size () { return windows.size },
    get evictions () { return evictions },
    check (key, counter) {
      const w = windows.get(key)
      return w ? w.check(counter) : counter > 0
    },
    commit (key, counter) {
      let w = windows.get(key)
      if (!w) {
        if (windows.size >= sendersMax) evictOne()
        w = replayWindow()
      } else {
        windows.delete(key) // re-insert: Map order is recency order
      }
      w.commit(counter)
      windows.set(key, w)
    },
    marks: (countMax) => [...windows].reverse().slice(0, countMax).map(([key, w]) => ({ key, top: w.top })),
    restore (marks) {
      for (const m of [...marks].reverse()) {
        const existing = windows.get(m.key)
        if (existing && existing.top >= m.top) continue
        if (!existing && windows.size >= sendersMax) evictOne()
        windows.delete(m.key)
        windows.set(m.key, replayWindow(m.top))
      }
    }
  }
}
