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
import type { PieceRanges } from '../protocol'
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

interface Live { s: PieceSource, active: number, failures: number, busyUntilMs: number, /** piece → not to be asked of it again before (ms) */ lacks: Map<number, number> }
interface Req { i: number, live: Live, ctrl: AbortController, timer: Timer, startMs: number, cancelled: boolean }

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

interface TransferOptions { store: PieceStore, clock: Clock, events?: TransferEvents, rank?: (s: PieceSource) => number }

export class Transfer {
  state: 'running' | 'done' | 'failed' | 'stopped' = 'running'
  error: CanopyError | null = null
  readonly done: Uint8Array
  doneCount = 0
  doneBytes = 0
  readonly bytesFrom: Record<SourceKind, number> = { peer: 0, provider: 0, origin: 0 }
  readonly stats = { corrupt: 0, duplicates: 0 }
  readonly startedMs: number
  endedMs: number | null = null
  readonly #reqs = new Map<number, Req[]>()
  readonly #storing = new Set<number>()
  readonly #sources = new Map<string, Live>()
  readonly #urgent = new Set<number>()
  readonly #waiters = new Map<number, Array<{ ok: () => void, fail: (e: CanopyError) => void }>>()
  #timers: TimerGroup
  #cursor = 0
  #lastProgressMs: number
  #originCorrupt = 0
  #pumping = false

  readonly #o: TransferOptions
  constructor (readonly m: Manifest, o: TransferOptions) {
    this.#o = o
    this.#timers = new TimerGroup(o.clock)
    this.startedMs = this.#lastProgressMs = o.clock.nowMs()
    this.done = new Uint8Array(m.pieces.length)
    // Resume: whatever the store holds is done already.
    m.pieces.forEach((h, i) => { if (o.store.has(h)) this.#mark(i) })
    if (this.doneCount === m.pieces.length) this.#finish('done')
    else this.#timers.setInterval(() => { this.#tick() }, SOURCE_REFRESH_MS)
  }

  #now (): number { return this.#o.clock.nowMs() }
  get #ended (): boolean { return this.state !== 'running' }
  get #ev (): TransferEvents { return this.#o.events ?? {} }

  sourceIds (): string[] { return [...this.#sources.keys()] }
  hasSource (id: string): boolean { return this.#sources.has(id) }
  source (id: string): PieceSource | undefined { return this.#sources.get(id)?.s }

  addSource (s: PieceSource): void {
    if (this.#ended || this.#sources.has(s.id) || this.#sources.size >= TRANSFER_SOURCES_COUNT_MAX) return
    this.#sources.set(s.id, { s, active: 0, failures: 0, busyUntilMs: 0, lacks: new Map() })
    this.#pump()
  }

  /** Stop using a source: its requests are cancelled (their pieces go to others) and its connections closed. */
  dropSource (id: string): void {
    const live = this.#sources.get(id)
    if (live === undefined) return
    this.#sources.delete(id)
    for (const rs of [...this.#reqs.values()]) for (const r of rs) if (r.live === live) this.#cancel(r)
    live.s.close?.()
    this.#pump()
  }

  /** Resolves once piece i is stored (asked ahead of others); rejects when the transfer fails. */
  piece (i: number): Promise<void> {
    if (this.done[i] === 1) {
      if (this.#o.store.has(this.m.pieces[i]!)) return Promise.resolve()
      this.#unmark(i) // evicted since: fetch it again
    }
    if (this.state === 'failed' || this.state === 'stopped') return Promise.reject(this.error)
    return new Promise((ok, fail) => {
      const list = this.#waiters.get(i) ?? []
      list.push({ ok, fail })
      this.#waiters.set(i, list)
      this.#urgent.add(i)
      this.#pump()
    })
  }

  /** Pieces done, as ranges. */
  ranges (): PieceRanges { return rangesWhere(this.done.length, (i) => this.done[i] === 1) }

  stop (): void { this.#finish('stopped', new CanopyError('CLOSED', 'stopped')) }

  // ---- scheduling ----------------------------------------------------------------

  #tick (): void {
    if (this.#ended) return
    this.#ev.tick?.()
    const now = this.#now()
    // Waiting for a source's window (off-peak) or a busy source is not a stall.
    if (this.#reqs.size > 0 || this.#storing.size > 0 || [...this.#sources.values()].some((l) => l.s.ready?.() === false || l.busyUntilMs > now)) this.#lastProgressMs = now
    if (now - this.#lastProgressMs >= TRANSFER_STALL_MS) {
      this.#finish('failed', new CanopyError('CONTENT_UNAVAILABLE', `no source for ${TRANSFER_STALL_MS / 1000} s`))
      return
    }
    this.#pump()
  }

  #pump (): void {
    if (this.#pumping || this.#ended) return
    this.#pumping = true
    try {
      const now = this.#now()
      const rank = this.#o.rank ?? (() => 0)
      const order = [...this.#sources.values()].sort((a, b) => RANK[a.s.kind] - RANK[b.s.kind] || rank(b.s) - rank(a.s))
      let inFlight = order.reduce((n, l) => n + l.active, 0)
      for (const live of order) {
        if (live.busyUntilMs > now || live.s.ready?.() === false) continue
        while (live.active < live.s.slots && inFlight < TRANSFER_REQUESTS_COUNT_MAX && this.#sources.get(live.s.id) === live) {
          const i = this.#pick(live)
          if (i < 0) break
          this.#request(live, i)
          inFlight++
        }
      }
    } finally {
      this.#pumping = false
    }
  }

  #open (i: number): boolean { return this.done[i] === 0 && !this.#storing.has(i) && !this.#reqs.has(i) }

  #can (live: Live, i: number): boolean { return live.s.has(i) && (live.lacks.get(i) ?? 0) <= this.#now() }

  /** Some LAN peer other than the provider can serve it: the origin must not (each piece crosses the WAN once). */
  #onLan (i: number): boolean {
    for (const l of this.#sources.values()) if (l.s.kind !== 'origin' && this.#can(l, i)) return true
    return false
  }

  #pick (live: Live): number {
    const ok = (i: number): boolean => this.#open(i) && this.#can(live, i) && (live.s.kind !== 'origin' || !this.#onLan(i))
    for (const i of this.#urgent) if (ok(i)) return i
    while (this.#cursor < this.done.length && this.done[this.#cursor] === 1) this.#cursor++
    for (let i = this.#cursor; i < this.done.length; i++) if (ok(i)) return i
    // Endgame: every missing piece is asked for; a second LAN source may race the first.
    if (live.s.kind === 'origin' || this.doneCount + this.#storing.size + this.#reqs.size < this.done.length) return -1
    for (const [i, rs] of this.#reqs) {
      if (this.done[i] === 0 && !this.#storing.has(i) && rs.length < ENDGAME_REQUESTS_PER_PIECE_MAX && rs.every((r) => r.live !== live) && this.#can(live, i)) return i
    }
    return -1
  }

  #request (live: Live, i: number): void {
    const ctrl = new AbortController()
    const ms = live.s.timeoutMs ?? DEFAULT_TIMEOUT[live.s.kind]
    const r: Req = {
      i, live, ctrl, startMs: this.#now(), cancelled: false,
      timer: this.#timers.setTimeout(() => { ctrl.abort(new CanopyError('TIMEOUT', `over ${ms} ms`)) }, ms)
    }
    const list = this.#reqs.get(i) ?? []
    if (list.length > 0) this.stats.duplicates++
    list.push(r)
    this.#reqs.set(i, list)
    live.active++
    live.s.fetch(i, ctrl.signal).then((b) => { this.#landed(r, b) }, (e: unknown) => { this.#missed(r, CanopyError.from(e, 'UPSTREAM_FAILED')) })
  }

  #settle (r: Req): void {
    r.timer.cancel()
    r.live.active--
    const rs = this.#reqs.get(r.i)
    if (rs === undefined) return
    const rest = rs.filter((x) => x !== r)
    if (rest.length > 0) this.#reqs.set(r.i, rest)
    else this.#reqs.delete(r.i)
  }

  #cancel (r: Req): void {
    r.cancelled = true
    r.ctrl.abort(new CanopyError('CLOSED', 'cancelled'))
  }

  #landed (r: Req, bytes: Buffer): void {
    this.#settle(r)
    const { i, live } = r
    if (r.cancelled || this.#ended || this.done[i] === 1 || this.#storing.has(i)) { this.#pump(); return }
    const src = live.s
    if (bytes.length !== pieceLength(this.m, i) || sha256(bytes) !== this.m.pieces[i]) {
      this.stats.corrupt++
      if (src.kind === 'origin') {
        if (++this.#originCorrupt >= SOURCE_FAILURES_MAX) {
          this.#finish('failed', new CanopyError('PIECE_INVALID', 'the origin serves other bytes than the manifest says'))
          return
        }
      } else {
        // The whole piece came from this one source: it is to blame. Isolated at once.
        this.#ev.corrupt?.(src)
        this.dropSource(src.id)
      }
      this.#pump()
      return
    }
    live.failures = 0
    for (const other of this.#reqs.get(i) ?? []) this.#cancel(other)
    this.#storing.add(i)
    this.bytesFrom[src.kind] += bytes.length
    this.#ev.received?.(src, bytes.length, this.#now() - r.startMs)
    this.#o.store.put(this.m.pieces[i]!, bytes).then(() => {
      this.#storing.delete(i)
      if (this.#ended) return
      this.#mark(i)
      this.#lastProgressMs = this.#now()
      this.#ev.stored?.(i, src)
      if (this.doneCount === this.done.length) this.#finish('done')
      else this.#pump()
    }, (err: unknown) => {
      this.#storing.delete(i)
      this.#finish('failed', CanopyError.from(err, 'CACHE_FULL'))
    })
    this.#pump()
  }

  #missed (r: Req, err: CanopyError): void {
    this.#settle(r)
    if (r.cancelled || this.#ended) { this.#pump(); return }
    const live = r.live
    const now = this.#now()
    if (err.code === 'CACHE_NOT_FOUND') {
      live.lacks.set(r.i, now + TRANSFER_RESOLVE_MS)
    } else if (err.code === 'HTTP_UNAVAILABLE') {
      live.busyUntilMs = now + SOURCE_BUSY_BACKOFF_MS
    } else {
      live.lacks.set(r.i, now + SOURCE_BUSY_BACKOFF_MS) // another source first
      this.#ev.failed?.(live.s, err)
      if (++live.failures >= SOURCE_FAILURES_MAX) this.dropSource(live.s.id)
    }
    this.#pump()
  }

  #mark (i: number): void {
    this.done[i] = 1
    this.doneCount++
    this.doneBytes += pieceLength(this.m, i)
    this.#urgent.delete(i)
    const ws = this.#waiters.get(i)
    this.#waiters.delete(i)
    for (const w of ws ?? []) w.ok()
  }

  #unmark (i: number): void {
    this.done[i] = 0
    this.doneCount--
    this.doneBytes -= pieceLength(this.m, i)
    this.#cursor = Math.min(this.#cursor, i)
    if (this.state === 'done') { // reopened: a finished transfer fetches an evicted piece again
      this.state = 'running'
      this.endedMs = null
      this.#lastProgressMs = this.#now()
      this.#timers = new TimerGroup(this.#o.clock)
      this.#timers.setInterval(() => { this.#tick() }, SOURCE_REFRESH_MS)
    }
  }

  #finish (state: 'done' | 'failed' | 'stopped', err?: CanopyError): void {
    if (this.#ended) return
    this.state = state
    this.error = err ?? null
    this.endedMs = this.#now()
    this.#timers.clearAll()
    for (const rs of [...this.#reqs.values()]) for (const r of rs) this.#cancel(r)
    for (const l of this.#sources.values()) l.s.close?.()
    this.#sources.clear()
    const ws = [...this.#waiters.values()].flat()
    this.#waiters.clear()
    this.#urgent.clear()
    for (const w of ws) w.fail(err ?? new CanopyError('CLOSED', 'ended'))
    this.#ev.ended?.()
  }
}
