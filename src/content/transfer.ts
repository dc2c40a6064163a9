// The piece transfer engine: one manifest, many sources (LAN peers, the
// designated provider, the origin) behind one interface. It asks each source
// for at most `slots` pieces at once (and at most TRANSFER_REQUESTS_COUNT_MAX
// in all: its memory), lowest index first (apps read in
// order) with pieces someone is waiting for ahead of the rest; verifies every
// piece against the manifest before it is stored or handed on; drops sources
// that fail or stall and asks elsewhere; asks a second peer for the last
// pieces (endgame, never the origin twice); and starts from whatever the
// store already holds (resume). Sources and store are interfaces: the engine
// runs the same on real sockets and on the simulated clock.

import { CanopyError } from '../errors'
import { TimerGroup, type Clock, type Timer } from '../hal'
import {
  ENDGAME_REQUESTS_PER_PIECE_MAX, PIECE_ORIGIN_TIMEOUT_MS, PIECE_PEER_TIMEOUT_MS, PIECE_PROVIDER_TIMEOUT_MS,
  SOURCE_BUSY_BACKOFF_MS, SOURCE_FAILURES_MAX, SOURCE_REFRESH_MS, TRANSFER_REQUESTS_COUNT_MAX, TRANSFER_RESOLVE_MS, TRANSFER_SOURCES_COUNT_MAX, TRANSFER_STALL_MS
} from '../limits'
import { pieceLength, sha256, type Manifest } from './manifest'

export type SourceKind = 'peer' | 'provider' | 'origin'

export interface PieceSource {
  /** A node id, or "origin". */
  readonly id: string
  readonly kind: SourceKind
  /** Requests in flight at once. */
  readonly slots: number
  /** Deadline of one request (default by kind). */
  readonly timeoutMs?: number
  /** May it be asked for piece i (a peer: the pieces it said it holds)? */
  has (i: number): boolean
  /** False while it may not be asked at all (the origin outside the off-peak window). */
  ready? (): boolean
  /** The piece's bytes (checked by the engine); CACHE_NOT_FOUND when it lacks it, HTTP_UNAVAILABLE when busy. */
  fetch (i: number, signal: AbortSignal): Promise<Buffer>
  /** Dropped: close its connections. */
  close? (): void
}

export interface PieceStore {
  has (hash: string): boolean
  /** Durable (and servable) when it resolves. */
  put (hash: string, bytes: Buffer): Promise<void>
}

export interface TransferEvents {
  /** A verified piece was stored. */
  stored? (i: number, source: PieceSource): void
  /** Verified bytes arrived from a source in ms. */
  received? (source: PieceSource, bytes: number, ms: number): void
  /** A request failed (error, stall, deadline). */
  failed? (source: PieceSource, err: CanopyError): void
  /** A source sent bytes that do not match the manifest: isolate it. */
  corrupt? (source: PieceSource): void
  /** Every tick: adjust sources (the caller's policy). */
  tick? (): void
  /** Completed or failed. */
  ended? (): void
}

// Short names: these never leave the engine.
/** A source in use: requests in flight (a), failures in a row (f), busy until (b, ms), piece → not to be asked of it again before (k, ms). */
interface Live { s: PieceSource, a: number, f: number, b: number, k: Map<number, number> }
/** A request: piece i from source l, its abort (c) and deadline (d), started at t (ms), cancelled (x). */
interface Req { i: number, l: Live, c: AbortController, d: Timer, t: number, x: boolean }

/** The indexes in [0, n) where pred holds, as sorted ranges. */
export function rangesWhere (n: number, pred: (i: number) => boolean): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (let i = 0; i < n; i++) {
    if (!pred(i)) continue
    const last = out[out.length - 1]
    if (last !== undefined && last[1] === i) last[1] = i + 1
    else out.push([i, i + 1])
  }
  return out
}

const DEFAULT_TIMEOUT: Record<SourceKind, number> = { peer: PIECE_PEER_TIMEOUT_MS, provider: PIECE_PROVIDER_TIMEOUT_MS, origin: PIECE_ORIGIN_TIMEOUT_MS }
const RANK: Record<SourceKind, number> = { peer: 0, provider: 1, origin: 2 }

export interface TransferOptions { store: PieceStore, clock: Clock, events?: TransferEvents, rank?: (s: PieceSource) => number }

export interface Transfer {
  state: 'running' | 'done' | 'failed' | 'stopped'
  error: CanopyError | null
  /** Pieces stored (of m.pieces.length), and their bytes. */
  held: number
  doneBytes: number
  /** Verified bytes received, by kind of source. */
  readonly from: Record<SourceKind, number>
  readonly stats: { corrupt: number, duplicates: number }
  readonly startedMs: number
  endedMs: number | null
  /** Is source `id` in use? */
  uses (id: string): boolean
  source (id: string): PieceSource | undefined
  /** Use a source too (up to TRANSFER_SOURCES_COUNT_MAX; not again if already in use). */
  add (s: PieceSource): void
  /** Stop using a source: its requests are cancelled (their pieces go to others) and its connections closed. */
  drop (id: string): void
  /** Resolves once piece i is stored (asked ahead of others); rejects when the transfer fails. */
  piece (i: number): Promise<void>
  stop (): void
}

// A closure rather than a class: its many private names minify to one letter.
export function createTransfer (m: Manifest, o: TransferOptions): Transfer {
  const { store, clock } = o
  const ev: TransferEvents = o.events ?? {}
  const reqs = new Map<number, Req[]>()
  const storing = new Set<number>()
  const sources = new Map<string, Live>()
  /** Pieces someone waits for (asked ahead of the rest). */
  const waiters = new Map<number, Array<{ ok: () => void, fail: (e: CanopyError) => void }>>()
  const n = m.pieces.length
  const done = new Uint8Array(n)
  const now = (): number => clock.nowMs()
  let timers: TimerGroup
  let cursor = 0
  let lastProgressMs = now()
  let originCorrupt = 0
  let pumping = false
  const ended = (): boolean => T.state !== 'running'
  const run = (): void => {
    timers = new TimerGroup(clock)
    timers.setInterval(tick, SOURCE_REFRESH_MS)
  }

  const T: Transfer = {
    state: 'running',
    error: null,
    held: 0,
    doneBytes: 0,
    from: { peer: 0, provider: 0, origin: 0 },
    stats: { corrupt: 0, duplicates: 0 },
    startedMs: lastProgressMs,
    endedMs: null,
    uses: (id) => sources.has(id),
    source: (id) => sources.get(id)?.s,
    add (s) {
      if (ended() || sources.has(s.id) || sources.size >= TRANSFER_SOURCES_COUNT_MAX) return
      sources.set(s.id, { s, a: 0, f: 0, b: 0, k: new Map() })
      pump()
    },
    drop (id) {
      const live = sources.get(id)
      if (live === undefined) return
      sources.delete(id)
      for (const rs of [...reqs.values()]) for (const r of rs) if (r.l === live) cancel(r)
      live.s.close?.()
      pump()
    },
    async piece (i) {
      if (done[i] === 1) {
        if (store.has(m.pieces[i]!)) return
        unmark(i) // evicted since: fetch it again
      }
      if (ended()) throw T.error! // failed or stopped (a done one was reopened above)
      await new Promise<void>((ok, fail) => {
        const list = waiters.get(i) ?? []
        list.push({ ok, fail })
        waiters.set(i, list)
        pump()
      })
    },
    stop () { finish('stopped', new CanopyError('CLOSED', 'stopped')) }
  }

  // ---- scheduling ----------------------------------------------------------------

  function tick (): void {
    if (ended()) return
    ev.tick?.()
    const t = now()
    // Waiting for a source's window (off-peak) or a busy source is not a stall.
    if (reqs.size > 0 || storing.size > 0 || [...sources.values()].some((l) => l.s.ready?.() === false || l.b > t)) lastProgressMs = t
    if (t - lastProgressMs >= TRANSFER_STALL_MS) finish('failed', new CanopyError('CONTENT_UNAVAILABLE', `no source for ${TRANSFER_STALL_MS / 1000} s`))
    else pump()
  }

  function pump (): void {
    if (pumping || ended()) return
    pumping = true
    try {
      const t = now()
      const rank = o.rank ?? (() => 0)
      const order = [...sources.values()].sort((a, b) => RANK[a.s.kind] - RANK[b.s.kind] || rank(b.s) - rank(a.s))
      // Pieces waiting for the store count too: they hold their bytes (memory) and a cache write.
      let inFlight = order.reduce((k, l) => k + l.a, storing.size)
      for (const live of order) {
        if (live.b > t || live.s.ready?.() === false) continue
        while (live.a < live.s.slots && inFlight < TRANSFER_REQUESTS_COUNT_MAX && sources.get(live.s.id) === live) {
          const i = pick(live)
          if (i < 0) break
          request(live, i)
          inFlight++
        }
      }
    } finally {
      pumping = false
    }
  }

  const can = (live: Live, i: number): boolean => live.s.has(i) && (live.k.get(i) ?? 0) <= now()

  /** Some LAN peer other than the provider can serve it: the origin must not (each piece crosses the WAN once). */
  const onLan = (i: number): boolean => [...sources.values()].some((l) => l.s.kind !== 'origin' && can(l, i))

  function pick (live: Live): number {
    const ok = (i: number): boolean => done[i] === 0 && !storing.has(i) && !reqs.has(i) && can(live, i) && (live.s.kind !== 'origin' || !onLan(i))
    for (const i of waiters.keys()) if (ok(i)) return i
    while (cursor < n && done[cursor] === 1) cursor++
    for (let i = cursor; i < n; i++) if (ok(i)) return i
    // Endgame: every missing piece is asked for; a second LAN source may race the first.
    if (live.s.kind === 'origin' || T.held + storing.size + reqs.size < n) return -1
    for (const [i, rs] of reqs) {
      if (done[i] === 0 && !storing.has(i) && rs.length < ENDGAME_REQUESTS_PER_PIECE_MAX && rs.every((r) => r.l !== live) && can(live, i)) return i
    }
    return -1
  }

  function request (live: Live, i: number): void {
    const ctrl = new AbortController()
    const ms = live.s.timeoutMs ?? DEFAULT_TIMEOUT[live.s.kind]
    const r: Req = {
      i, l: live, c: ctrl, t: now(), x: false,
      d: timers.setTimeout(() => { ctrl.abort(new CanopyError('TIMEOUT', `over ${ms} ms`)) }, ms)
    }
    const list = reqs.get(i) ?? []
    if (list.length > 0) T.stats.duplicates++
    list.push(r)
    reqs.set(i, list)
    live.a++
    live.s.fetch(i, ctrl.signal).then((b) => { landed(r, b) }, (e: unknown) => { missed(r, CanopyError.from(e, 'UPSTREAM_FAILED')) })
  }

  /** A request ended: false (and the queue pumped) if nobody wants its outcome any more. */
  function settle (r: Req): boolean {
    r.d.cancel()
    r.l.a--
    const rest = (reqs.get(r.i) ?? []).filter((x) => x !== r)
    if (rest.length > 0) reqs.set(r.i, rest)
    else reqs.delete(r.i)
    if (!r.x && !ended()) return true
    pump()
    return false
  }

  function cancel (r: Req): void {
    r.x = true
    r.c.abort(new CanopyError('CLOSED', 'cancelled'))
  }

  function landed (r: Req, bytes: Buffer): void {
    if (!settle(r)) return
    const { i, l: live } = r
    const src = live.s
    if (done[i] === 1 || storing.has(i)) {
      // already here
    } else if (bytes.length !== pieceLength(m, i) || sha256(bytes) !== m.pieces[i]) {
      T.stats.corrupt++
      if (src.kind !== 'origin') {
        // The whole piece came from this one source: it is to blame. Isolated at once.
        ev.corrupt?.(src)
        T.drop(src.id)
      } else if (++originCorrupt >= SOURCE_FAILURES_MAX) {
        finish('failed', new CanopyError('PIECE_INVALID', 'the origin\'s bytes do not match the manifest'))
        return
      }
    } else {
      live.f = 0
      for (const other of reqs.get(i) ?? []) cancel(other)
      storing.add(i)
      T.from[src.kind] += bytes.length
      ev.received?.(src, bytes.length, now() - r.t)
      store.put(m.pieces[i]!, bytes).then(() => {
        storing.delete(i)
        if (ended()) return
        mark(i)
        lastProgressMs = now()
        ev.stored?.(i, src)
        if (T.held === n) finish('done')
        else pump()
      }, (err: unknown) => {
        storing.delete(i)
        finish('failed', CanopyError.from(err, 'CACHE_FULL'))
      })
    }
    pump()
  }

  function missed (r: Req, err: CanopyError): void {
    if (!settle(r)) return
    const { l: live, i } = r
    const t = now()
    if (err.code === 'CACHE_NOT_FOUND') {
      live.k.set(i, t + TRANSFER_RESOLVE_MS)
    } else if (err.code === 'HTTP_UNAVAILABLE') {
      live.b = t + SOURCE_BUSY_BACKOFF_MS
    } else {
      live.k.set(i, t + SOURCE_BUSY_BACKOFF_MS) // another source first
      ev.failed?.(live.s, err)
      if (++live.f >= SOURCE_FAILURES_MAX) T.drop(live.s.id)
    }
    pump()
  }

  /** Piece i is (d = 1) or is no longer (d = -1) in the store. */
  function count (i: number, d: 1 | -1): void {
    done[i] = d > 0 ? 1 : 0
    T.held += d
    T.doneBytes += d * pieceLength(m, i)
  }

  function mark (i: number): void {
    count(i, 1)
    const ws = waiters.get(i)
    waiters.delete(i)
    for (const w of ws ?? []) w.ok()
  }

  function unmark (i: number): void {
    count(i, -1)
    cursor = Math.min(cursor, i)
    if (T.state === 'done') { // reopened: a finished transfer fetches an evicted piece again
      T.state = 'running'
      T.endedMs = null
      lastProgressMs = now()
      run()
    }
  }

  function finish (state: 'done' | 'failed' | 'stopped', err?: CanopyError): void {
    if (ended()) return
    T.state = state
    T.error = err ?? null
    T.endedMs = now()
    timers?.clearAll()
    for (const id of [...sources.keys()]) T.drop(id) // its requests cancelled, its connections closed
    const ws = [...waiters.values()].flat()
    waiters.clear()
    for (const w of ws) w.fail(err ?? new CanopyError('CLOSED', 'ended'))
    ev.ended?.()
  }

  // Resume: whatever the store holds is done already.
  m.pieces.forEach((h, i) => { if (store.has(h)) mark(i) })
  if (T.held === n) finish('done')
  else run()
  return T
}
