// One stream on one node, its control plane: the parent (with the path from
// the root, for loop checks), a pre-selected list of backups, the children
// (with their reports), join attempts that follow redirects, heartbeats both
// ways, and the moves that keep the tree shallow and every child fed.
//
// Rules, in the order they are checked (FORMAT.md "Tree"):
// * a node refuses a JOIN from any node on its own path (loop), when it is
//   not attached itself, or when the path would exceed STREAM_DEPTH_MAX;
// * a child refuses an ACCEPT or STATUS whose path holds itself or does not
//   start at the stream's source;
// * capacity = upload budget / bitrate; a full node takes an orphan in the
//   slot of its silent child, displaces a weak leaf for a stronger joiner,
//   or redirects to the shallowest spare slots of its subtree;
// * a parent silent for deadAfterMs is dead: the child joins its backups
//   (the grandparent first for one child, spare nodes elsewhere for the
//   others, so orphans do not all land on one node) and pulls the gap;
// * a child whose queue stays a second behind for STREAM_LAG_MS is moved
//   lower (redirected to spare slots under its siblings).

import {
  STREAM_BLACKLIST_MS, STREAM_CANDIDATES_MAX, STREAM_DEPTH_MAX, STREAM_EVENTS_MAX, STREAM_JOIN_TARGETS_MAX,
  STREAM_LAG_MS, STREAM_REDIRECTS_MAX, STREAM_BITRATE_FLOOR_BYTES_PER_SEC
} from '../limits'
import { capacityFor, mergeCandidates, pickVictim, rotate } from './placement'
import type { Session, SessionEnv } from './session'
import type { StreamTransport, TransportSendOptions } from './transport'
import { FROM_NEWEST_KEY, JOIN_FLAGS, MSG, REDIRECT, REFUSE, encodeMessage, type Candidate, type StreamMessage } from './wire'

export interface ParentState {
  nodeId: string
  /** Root..parent. */
  path: string[]
  latencyMs: number
  lastHeardMs: number
  sinceMs: number
  backups: Candidate[]
}

export interface ChildState {
  nodeId: string
  capacity: number
  uptimeS: number
  /** From its latest REPORT. */
  children: number
  subtree: number
  spare: Candidate[]
  nextSeq: number
  joinedMs: number
  lastHeardMs: number
  lastSentMs: number
  lastStatusMs: number
  lagSinceMs: number
  startSeq: number
  /** Catch-up still owed to this child (a new child's start, a gap it asked for): [fillNext, fillEnd]. */
  fillNext: number
  fillEnd: number
  /** Monotonic ms of the last GAP honoured (a child cannot make us resend the ring in a loop). */
  lastGapMs: number
  index: number
}

interface Attempt {
  reason: string
  queue: Candidate[]
  tried: Set<string>
  redirects: number
  /** Monotonic ms the current step (one target) started. */
  stepMs: number
  current: string | null
  joinSent: boolean
  formerParent: string | null
  retryAtMs: number
  retries: number
}

/** One re-attach: when the parent was last heard, declared lost, replaced, and the gap filled. */
export interface ReattachEvent {
  reason: string
  from: string
  to: string | null
  lastHeardMs: number
  lostMs: number
  attachedMs: number | null
  filledMs: number | null
  /** The newest seq held when the parent was lost: the gap is filled when everything up to it is held. */
  gapEnd: number
}

export interface TreeCounters {
  refusals: number
  moves: number
  displaced: number
  reattaches: number
  /** Moves up to a shallower spare slot, without losing the parent first. */
  climbs: number
}

const JOIN_RETRY_MS = 250
const JOIN_RETRY_MS_MAX = 5_000
/** A child this far behind (its queue holds this many seconds of stream) is lagging. */
const LAG_QUEUE_SECONDS = 1
const BLACKLIST_COUNT_MAX = 64
/** GAP requests from one child are honoured at most this often (its own retry interval is 200 ms). */
const GAP_HONOUR_MS = 150
/** A node looks for a shallower slot this often, and only for one this many levels up. */
const CLIMB_INTERVAL_MS = 5_000
const CLIMB_GAIN = 2
/** Catch-up runs at this many times the live chunk rate (or faster, with spare upload). */
const FILL_SPEEDUP = 2
/** Chunk rate assumed before one is measured (~12 KB chunks at 8 Mbit/s). */
const FILL_CHUNKS_PER_SEC_UNKNOWN = 100

export class Tree {
  #p: ParentState | null = null
  readonly #kids = new Map<string, ChildState>()
  readonly events: ReattachEvent[] = []
  readonly counters: TreeCounters = { refusals: 0, moves: 0, displaced: 0, reattaches: 0, climbs: 0 }
  #attempt: Attempt | null = null
  readonly #blacklist = new Map<string, number>()
  readonly #attachedListeners: Array<() => void> = []
  #childIndex = 0
  #redirectTurn = 0
  #lastReportMs = 0
  #lastGapMs = 0
  #lastShedMs = 0
  #lastClimbMs = 0
  /** Monotonic ms our path last changed (no climbing while the tree above us settles). */
  #pathChangedMs = 0
  #closed = false

  readonly s: Session
  readonly #env: SessionEnv
  readonly #t: StreamTransport
  readonly #self: string

  constructor (s: Session) {
    this.s = s
    this.#env = s.env
    this.#t = s.env.transport
    this.#self = s.env.selfId
  }

  /** Our parent, null when detached (read-only outside the tree). */
  get parent (): ParentState | null { return this.#p }
  /** This node's children by node id (read-only outside the tree). */
  get children (): ReadonlyMap<string, ChildState> { return this.#kids }

  #now (): number { return this.#env.clock.nowMs() }
  get #st () { return this.#env.settings }

  get attached (): boolean { return this.s.isSource || this.#p !== null }
  get joining (): boolean { return this.#attempt !== null }
  /** Root..this node ([] when detached). */
  get path (): string[] { return this.s.isSource ? [this.#self] : this.#p !== null ? [...this.#p.path, this.#self] : [] }
  get depth (): number { return this.s.isSource ? 0 : this.#p !== null ? this.#p.path.length : -1 }
  get latencyMs (): number { return this.#p?.latencyMs ?? 0 }
  get subtree (): number { let n = 1; for (const c of this.#kids.values()) n += c.subtree; return n }

  capacity (): number {
    const rate = Math.max(this.s.isSource ? this.s.sourceBitrate : 0, this.s.bitrate, STREAM_BITRATE_FLOOR_BYTES_PER_SEC)
    return Math.min(this.#st.childrenMax, capacityFor(this.#st.uploadBytesPerSec, rate))
  }

  onAttached (fn: () => void): void {
    if (this.attached) fn()
    else this.#attachedListeners.push(fn)
  }

  // ---- joining ------------------------------------------------------------------------------

  /** Start (or restart) joining: these targets first, the root last. */
  join (targets: readonly Candidate[], reason = 'join', formerParent: string | null = null): void {
    if (this.s.isSource || this.#closed) return
    const now = this.#now()
    this.#attempt = { reason, queue: [...targets], tried: new Set(), redirects: 0, stepMs: now, current: null, joinSent: false, formerParent, retryAtMs: 0, retries: 0 }
    this.#next()
  }

  /** A candidate entry for nodeId, with where we reach it when it is linked to us (it cannot know how we see it). */
  #cand (nodeId: string, depth: number, spare: number, uptimeS = 0): Candidate {
    const hint = this.#t.hint(nodeId)
    return { nodeId, depth, spare, uptimeS, port: hint?.port ?? 0, address: hint?.address ?? '' }
  }

  /** The stream's source as a join target. */
  root (): Candidate { return this.#cand(this.s.meta.sourceId, 0, 1) }

  #next (): void {
    const a = this.#attempt
    if (a === null) return
    const now = this.#now()
    // Ancestors are fine (a climb joins one); descendants refuse us themselves (their path holds us).
    const usable = (id: string): boolean => id !== this.#self && id !== this.#p?.nodeId && !a.tried.has(id) && !this.#blacklisted(id) && !this.#kids.has(id)
    let target: Candidate | undefined
    while (target === undefined && a.queue.length > 0 && a.tried.size < STREAM_JOIN_TARGETS_MAX) {
      const c = a.queue.shift()!
      if (usable(c.nodeId)) target = c
    }
    // The root is the last resort of every attempt but a climb (which keeps its parent when nobody higher has room).
    if (target === undefined && a.reason !== 'climb' && usable(this.s.meta.sourceId)) target = this.root()
    if (target !== undefined) {
      a.tried.add(target.nodeId)
      a.current = target.nodeId
      a.joinSent = false
      a.stepMs = now
            this.#t.connect(target.address !== '' ? target : { nodeId: target.nodeId })
      if (this.#t.isUp(target.nodeId)) this.#sendJoin()
      return
    }
    if (a.reason === 'climb') { this.#attempt = null; return }
    // Nobody took us: try again from the root after a jittered backoff.
    a.current = null
    a.retries++
    const backoff = Math.min(JOIN_RETRY_MS_MAX, JOIN_RETRY_MS * 2 ** Math.min(5, a.retries - 1))
    a.retryAtMs = now + backoff / 2 + this.#env.random.float() * backoff / 2
  }

  #sendJoin (): void {
    const a = this.#attempt
    if (a === null || a.current === null || a.joinSent) return
    a.joinSent = true
    a.stepMs = this.#now()
    const from = this.s.nextSeq === -1 ? FROM_NEWEST_KEY : this.s.nextSeq
    this.#send(a.current, 'join', from, this.capacity(), this.#env.uptimeS(), a.formerParent !== null ? JOIN_FLAGS.orphan : 0, a.formerParent ?? undefined)
  }

  #onAccept (from: string, m: Extract<StreamMessage, { type: 'accept' }>): void {
    const a = this.#attempt
    if (a === null || a.current !== from) return
    const staleClimb = a.reason === 'climb' && this.#p !== null && m.path.length + 1 + CLIMB_GAIN > this.#p.path.length + 1
    if (!this.#pathAcceptable(m.path, from) || staleClimb) {
      // A loop, or a climb that would not climb (the slot we saw has moved down since): keep what we have.
      this.counters.refusals++
      this.#send(from, 'leave')
      this.#next()
      return
    }
    const now = this.#now()
    const rtt = this.#t.rttMs(from)
    const previous = this.#p
    if (previous !== null && previous.nodeId !== from) this.#send(previous.nodeId, 'leave') // a climb: make before break
    this.#p = { nodeId: from, path: m.path, latencyMs: m.latencyMs + (rtt ?? 0) / 2, lastHeardMs: now, sinceMs: now, backups: [] }
    this.#attempt = null
    this.s.acceptStart(m.startSeq)
    if (a.reason === 'climb') this.counters.climbs++
    const ev = this.events[this.events.length - 1]
    if (a.reason !== 'climb' && ev !== undefined && ev.attachedMs === null && ev.to === null) {
      ev.attachedMs = now
      ev.to = from
      this.counters.reattaches++
      this.#checkFilled(now)
    }
    this.#lastReportMs = 0
    for (const c of this.#kids.values()) this.#sendStatus(c)
    for (const fn of this.#attachedListeners.splice(0)) fn()
  }

  /** A path from a would-be parent: starts at our source, ends at the parent, never holds us, within the depth bound. */
  #pathAcceptable (path: readonly string[], parent: string): boolean {
    return path.length >= 1 && path.length < STREAM_DEPTH_MAX && path[0] === this.s.meta.sourceId &&
      path[path.length - 1] === parent && !path.includes(this.#self) && new Set(path).size === path.length
  }

  #onRedirect (from: string, m: Extract<StreamMessage, { type: 'redirect' }>): void {
    const a = this.#attempt
    if (a !== null && a.current === from) {
      a.redirects++
      const useful = a.reason === 'climb' ? m.candidates.filter((c) => c.depth + 1 + CLIMB_GAIN <= this.depth) : m.candidates
      if (a.redirects > STREAM_REDIRECTS_MAX) a.queue = []
      else a.queue.unshift(...useful)
      this.#next()
      return
    }
    if (this.#p?.nodeId === from) {
      // Our parent moves us (we lag, or a stronger node took our slot).
      this.#lose(m.reason === REDIRECT.displaced ? 'displaced' : 'moved', m.candidates, false)
    }
  }

  // ---- losing a parent -----------------------------------------------------------------------

  /** The parent is gone or unfit: record it and join the backups (or the candidates given). */
  #lose (reason: string, candidates: readonly Candidate[] | null, orphan: boolean): void {
    const old = this.#p
    if (old === null) return
    const now = this.#now()
    this.#p = null
    if (reason !== 'dead' && reason !== 'link' && this.#t.isUp(old.nodeId)) this.#send(old.nodeId, 'leave')
    this.events.push({ reason, from: old.nodeId, to: null, lastHeardMs: old.lastHeardMs, lostMs: now, attachedMs: null, filledMs: null, gapEnd: this.s.newestSeq })
    if (this.events.length > STREAM_EVENTS_MAX) this.events.shift()
    const targets = [...(candidates ?? []), ...old.backups].filter((t) => t.nodeId !== old.nodeId)
    this.join(targets, reason, orphan ? old.nodeId : null)
  }

  parentPolluted (why: string): void {
    const p = this.#p
    if (p === null) return
    this.#env.log.warn('parent sent data that does not verify; replacing it', { stream: this.s.name, parent: p.nodeId, why })
    this.#block(p.nodeId)
    this.#lose('polluted', null, false)
  }

  #block (nodeId: string): void {
    if (this.#blacklist.size >= BLACKLIST_COUNT_MAX) {
      const first = this.#blacklist.keys().next().value
      if (first !== undefined) this.#blacklist.delete(first)
    }
    this.#blacklist.set(nodeId, this.#now() + STREAM_BLACKLIST_MS)
  }

  #blacklisted (nodeId: string): boolean {
    const until = this.#blacklist.get(nodeId)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#blacklist.delete(nodeId)
    return false
  }

  #checkFilled (now: number): void {
    const ev = this.events[this.events.length - 1]
    if (ev !== undefined && ev.attachedMs !== null && ev.filledMs === null && this.s.nextSeq > ev.gapEnd) ev.filledMs = now
  }

  // ---- serving children ----------------------------------------------------------------------

  #onJoin (from: string, m: Extract<StreamMessage, { type: 'join' }>): void {
    const refuse = (reason: number): void => { this.counters.refusals++; this.#send(from, 'refuse', reason) }
    if (this.s.ended) return refuse(REFUSE.unknownStream)
    if (!this.attached) return refuse(REFUSE.notReady)
    const path = this.path
    if (path.includes(from)) return refuse(REFUSE.loop)
    if (path.length >= STREAM_DEPTH_MAX) return refuse(REFUSE.depth)
    const existing = this.#kids.get(from)
    if (existing !== undefined) { this.#accept(from, m, existing.index); return }
    if (this.#cannotFill(m.fromSeq) && this.#p !== null) {
      // The joiner needs chunks from before our ring starts (we joined after them): an older node up the path still
      // holds them; take the joiner only if nobody there will.
      const up = this.#cand(this.#p.nodeId, this.depth - 1, 1)
      this.#send(from, 'redirect', REDIRECT.full, [up, ...this.#spareFor(from).filter((c) => c.depth < this.depth)])
      return
    }
    const now = this.#now()
    const orphan = (m.flags & JOIN_FLAGS.orphan) !== 0
    if (this.#kids.size < this.capacity()) {
      // A node still paying one new child its catch-up sends the next joiner to spare slots elsewhere when there
      // are any: in a flash crowd the catch-up bursts spread over the tree instead of piling on one uplink.
      const elsewhere = !orphan && this.#filling() > 0 ? this.#spareFor(from) : []
      if (elsewhere.length === 0) { this.#accept(from, m); return }
      this.#send(from, 'redirect', REDIRECT.full, rotate(elsewhere, this.#redirectTurn++))
      return
    }
    if (orphan) {
      const dead = this.#kids.get(m.formerParent)
      if (dead !== undefined && now - dead.lastHeardMs >= this.#st.orphanSilenceMs) {
        this.#kids.delete(dead.nodeId)
        this.#accept(from, m)
        return
      }
    }
    const victim = pickVictim([...this.#kids.values()], { capacity: m.capacity, uptimeS: m.uptimeS }, now)
    if (victim !== null) {
      const v = this.#kids.get(victim)!
      this.#kids.delete(victim)
      this.#accept(from, m)
      const joiner = this.#cand(from, this.depth + 1, m.capacity, m.uptimeS)
      this.counters.displaced++
      this.#send(v.nodeId, 'redirect', REDIRECT.displaced, [joiner, ...this.#spareFor(v.nodeId)])
      return
    }
    const candidates = this.#spareFor(from)
    if (candidates.length === 0) return refuse(REFUSE.full)
    this.#send(from, 'redirect', REDIRECT.full, rotate(candidates, this.#redirectTurn++))
  }

  /** A joiner asks from fromSeq: do we lack chunks it still needs, that older members may hold? */
  #cannotFill (fromSeq: number): boolean {
    const s = this.s
    if (fromSeq === FROM_NEWEST_KEY || s.ring.size === 0 || fromSeq >= s.ring.oldest || fromSeq > s.newestSeq) return false
    const rate = s.chunkRate
    const ageMs = rate > 0 ? (s.newestSeq - fromSeq) * 1000 / rate : 0
    return ageMs < this.#st.playoutDelayMs
  }

  #accept (from: string, m: Extract<StreamMessage, { type: 'join' }>, index = this.#childIndex++): void {
    const now = this.#now()
    const start = this.s.startFor(m.fromSeq === FROM_NEWEST_KEY ? null : m.fromSeq)
    const c: ChildState = {
      nodeId: from, capacity: m.capacity, uptimeS: m.uptimeS, children: 0, subtree: 1, spare: [], nextSeq: start,
      joinedMs: now, lastHeardMs: now, lastSentMs: now, lastStatusMs: 0, lagSinceMs: 0, startSeq: start, fillNext: start, fillEnd: -1, lastGapMs: 0, index
    }
    this.#kids.set(from, c)
    this.#send(from, 'accept', start, this.latencyMs, this.path)
    this.#sendStatus(c)
    this.#owe(c, start, this.s.newestSeq)
  }

  /**
   * Owe a child the held chunks [from, to]: sent by fillStep() on the tick,
   * paced so catch-up never crowds out live chunks (which forward() sends at
   * once). The first slice goes now, so a new player's first byte does not
   * wait for a tick.
   */
  #owe (c: ChildState, from: number, to: number): void {
    if (to < from) return
    if (c.fillNext <= c.fillEnd) {
      // Already paying: what was sent is on its way (a GAP for it is only the child being impatient); just owe more.
      if (to > c.fillEnd) { this.s.sendBatches(c.nodeId, c.fillEnd + 1, to); c.fillEnd = to }
      return
    }
    this.s.sendBatches(c.nodeId, from, to)
    c.fillNext = from
    c.fillEnd = to
    this.#fillStep(c, this.#fillBudget() / Math.max(1, this.#filling()))
  }

  /**
   * Chunks of catch-up per tick for all children together: twice the live
   * chunk rate (so a backlog shrinks at least as fast as the stream runs), or
   * what our spare upload carries if that is more.
   */
  #fillBudget (): number {
    const rate = Math.max(this.s.bitrate, STREAM_BITRATE_FLOOR_BYTES_PER_SEC)
    const spare = (this.#st.uploadBytesPerSec - this.#kids.size * rate) / rate
    const chunksPerSec = this.s.chunkRate > 0 ? this.s.chunkRate : FILL_CHUNKS_PER_SEC_UNKNOWN
    return Math.max(FILL_SPEEDUP, spare) * chunksPerSec * this.#st.heartbeatMs / 1000
  }

  #filling (): number {
    let n = 0
    for (const c of this.#kids.values()) if (c.fillNext <= c.fillEnd) n++
    return n
  }

  #fillStep (c: ChildState, budget: number): void {
    if (c.fillNext > c.fillEnd) return
    // At least one chunk per step, so a share smaller than a chunk still moves.
    c.fillNext = this.s.fill(c.nodeId, c.fillNext, c.fillEnd, Math.max(1, Math.round(budget)))
  }

  /** Spare slots in our subtree for a joiner (never the joiner itself or its own subtree as far as we know). */
  #spareFor (exclude: string): Candidate[] {
    const lists: Candidate[][] = []
    for (const c of this.#kids.values()) if (c.nodeId !== exclude) lists.push(this.#withHint(c.nodeId, c.spare))
    return mergeCandidates(lists, new Set([exclude, this.#self]))
  }

  /** Fill in the address of a direct child in its own entries (it cannot know how we see it). */
  #withHint (child: string, list: readonly Candidate[]): Candidate[] {
    const hint = this.#t.hint(child)
    if (hint === null) return [...list]
    return list.map((c) => (c.nodeId === child && c.address === '' ? { ...c, address: hint.address, port: hint.port } : c))
  }

  /** What we report upward (and answer FIND with): our own spare slots and the best of our subtree. */
  spare (): Candidate[] {
    const own: Candidate[] = []
    const free = this.capacity() - this.#kids.size
    if (this.attached && free > 0 && !this.s.ended) own.push(this.#cand(this.#self, this.depth, free, this.#env.uptimeS()))
    const lists: Candidate[][] = [own]
    for (const c of this.#kids.values()) lists.push(this.#withHint(c.nodeId, c.spare))
    return mergeCandidates(lists, new Set())
  }

  /** Where child c should go if we die: our parent for one child, spare slots outside c's subtree for the others. */
  #backupsFor (c: ChildState): Candidate[] {
    const lists: Candidate[][] = []
    for (const o of this.#kids.values()) if (o.nodeId !== c.nodeId) lists.push(this.#withHint(o.nodeId, o.spare))
    if (this.#p !== null) lists.push(this.#p.backups)
    // Our own free slots too: no use to c when we die (lose() skips us), but c passes them down to nodes deep
    // enough to climb to them.
    const free = this.capacity() - this.#kids.size
    if (free > 0) lists.push([this.#cand(this.#self, this.depth, free, this.#env.uptimeS())])
    const spare = mergeCandidates(lists, new Set([c.nodeId]), STREAM_CANDIDATES_MAX)
    const up: Candidate[] = []
    if (this.#p !== null) {
      // Our parent takes c in the slot we leave when we die (the orphan claim). Spare 0 unless it has free slots
      // now: an entry with spare 0 is never passed further down.
      up.push(this.#cand(this.#p.nodeId, this.depth - 1, spare.find((x) => x.nodeId === this.#p!.nodeId)?.spare ?? 0))
    }
    return rotate([...up, ...spare.filter((x) => x.nodeId !== this.#p?.nodeId)], c.index).slice(0, STREAM_CANDIDATES_MAX)
  }

  #sendStatus (c: ChildState): void {
    c.lastStatusMs = this.#now()
    this.#send(c.nodeId, 'status', this.latencyMs, this.path, this.#backupsFor(c))
  }

  /** A verified chunk: to every child that started at or before it. */
  forward (seq: number, frame: Buffer, deadlineMs: number): void {
    for (const c of this.#kids.values()) {
      // Older than its start, or still owed by catch-up (fillStep sends it in order).
      if (seq < c.startSeq || (seq >= c.fillNext && seq <= c.fillEnd)) continue
      this.sendChunk(c.nodeId, frame, deadlineMs)
    }
    if (this.events.length > 0) this.#checkFilled(this.#now())
  }

  /** One chunk to one child; tracks whether the child keeps up. False when refused (queue full). */
  sendChunk (nodeId: string, frame: Buffer, deadlineMs: number): boolean {
    const c = this.#kids.get(nodeId)
    const ok = this.#t.send(nodeId, frame, { expiresAtMs: deadlineMs })
    if (ok) this.s.counters.forwarded++
    else this.s.counters.droppedLate++
    if (c !== undefined) {
      const now = this.#now()
      if (ok) c.lastSentMs = now
      const behind = !ok || this.#t.queuedBytes(nodeId) > Math.max(this.s.bitrate, STREAM_BITRATE_FLOOR_BYTES_PER_SEC) * LAG_QUEUE_SECONDS
      if (!behind) c.lagSinceMs = 0
      else if (c.lagSinceMs === 0) c.lagSinceMs = now
    }
    return ok
  }

  /** A frame for every child (signature batches, the end of the stream). */
  toChildren (frame: Buffer, options: TransportSendOptions): void {
    for (const c of this.#kids.values()) {
      if (this.#t.send(c.nodeId, frame, options)) c.lastSentMs = this.#now()
    }
  }

  #onReport (c: ChildState, m: Extract<StreamMessage, { type: 'report' }>): void {
    c.children = m.children
    c.subtree = Math.max(1, m.subtree)
    c.capacity = m.capacity
    c.uptimeS = m.uptimeS
    c.nextSeq = m.nextSeq
    c.spare = m.spare
  }

  #moveLower (c: ChildState, reason: number): void {
    this.#kids.delete(c.nodeId)
    this.counters.moves++
    this.#send(c.nodeId, 'redirect', reason, this.#spareFor(c.nodeId))
  }

  // ---- messages and time ------------------------------------------------------------------------

  /** Every stream message for this session from one peer. */
  onMessage (from: string, m: StreamMessage, frame: Buffer): void {
    const now = this.#now()
    const parent = this.#p
    if (parent !== null && parent.nodeId === from) parent.lastHeardMs = now
    const child = this.#kids.get(from)
    if (child !== undefined) child.lastHeardMs = now
    switch (m.type) {
      case 'chunk':
      case 'sig':
      case 'end':
        if (parent === null || parent.nodeId !== from) { this.s.counters.stray++; return }
        this.s.onData(m, frame)
        return
      case 'join': this.#onJoin(from, m); return
      case 'accept': this.#onAccept(from, m); return
      case 'redirect': this.#onRedirect(from, m); return
      case 'refuse':
        if (this.#attempt?.current === from) this.#next()
        return
      case 'leave':
        if (child !== undefined) this.#kids.delete(from)
        else if (parent?.nodeId === from) this.#lose('left', null, false)
        return
      case 'status':
        if (parent?.nodeId !== from) return
        if (!this.#pathAcceptable(m.path, from)) { this.#lose('loop', null, false); return }
        if (m.path.length !== parent.path.length || m.path.some((id, i) => id !== parent.path[i])) {
          parent.path = m.path
          this.#pathChangedMs = now
          for (const c of this.#kids.values()) this.#sendStatus(c)
        }
        parent.latencyMs = m.latencyMs + (this.#t.rttMs(from) ?? 0) / 2
        parent.backups = m.backups
        return
      case 'report':
        if (child !== undefined) this.#onReport(child, m)
        return
      case 'gap':
        if (child !== undefined && now - child.lastGapMs >= GAP_HONOUR_MS) {
          child.lastGapMs = now
          this.#owe(child, m.fromSeq, m.fromSeq + m.count - 1)
        }
        return
      case 'heartbeat':
      case 'find':
      case 'found':
      case 'notFound':
    }
  }

  onUp (nodeId: string): void {
    if (this.#attempt?.current === nodeId) this.#sendJoin()
  }

  onDown (nodeId: string): void {
    if (this.#p?.nodeId === nodeId) this.#lose('link', null, true)
    this.#kids.delete(nodeId)
    if (this.#attempt?.current === nodeId) this.#next()
  }

  tick (): void {
    if (this.#closed) return
    const now = this.#now()
    const st = this.#st
    const a = this.#attempt
    if (a !== null) {
      if (a.current === null && now >= a.retryAtMs) { a.tried = new Set(); a.redirects = 0; a.queue = [this.root()]; this.#next() } else if (a.current !== null && now - a.stepMs >= st.joinStepMs) this.#next()
    }
    const p = this.#p
    if (p !== null && now - p.lastHeardMs >= st.deadAfterMs) this.#lose('dead', null, true)
    else if (p !== null && a === null) this.#maybeClimb(now)
    if (this.#p !== null && now - this.#lastReportMs >= st.reportMs) {
      this.#lastReportMs = now
      this.#send(this.#p.nodeId, 'report', this.subtree, this.capacity(), this.#kids.size, this.#env.uptimeS(), Math.max(0, this.s.nextSeq), this.spare())
    }
    if (this.#p !== null) {
      const hole = this.s.checkHoles(now)
      if (hole !== null && now - this.#lastGapMs >= Math.max(2 * st.heartbeatMs, 200)) {
        this.#lastGapMs = now
        this.#send(this.#p.nodeId, 'gap', hole.from, hole.count)
      }
    }
    const fillers = this.#filling()
    if (fillers > 0) {
      const share = this.#fillBudget() / fillers
      for (const c of this.#kids.values()) this.#fillStep(c, share)
    }
    let shed = this.#kids.size - this.capacity()
    // A child is slow when it lags while a sibling keeps up; when every child lags, our own uplink is
    // the bottleneck and moving one of them would only add a repair. Only leaves move: a relay takes its subtree along.
    let keepingUp = 0
    for (const c of this.#kids.values()) if (c.lagSinceMs === 0) keepingUp++
    for (const c of [...this.#kids.values()]) {
      if (now - c.lastHeardMs >= st.childDeadMs) { this.#kids.delete(c.nodeId); continue }
      if (c.lagSinceMs !== 0 && now - c.lagSinceMs >= STREAM_LAG_MS && keepingUp > 0 && c.children === 0) { this.#moveLower(c, REDIRECT.move); shed--; continue }
      if (now - c.lastStatusMs >= st.statusMs) this.#sendStatus(c)
      else if (now - c.lastSentMs >= st.heartbeatMs) this.#send(c.nodeId, 'heartbeat')
    }
    if (shed > 0 && now - this.#lastShedMs >= 1_000) {
      // The bitrate rose above what our upload carries: move one leaf (or the newest child) down.
      const leaves = [...this.#kids.values()].sort((x, y) => x.children - y.children || y.joinedMs - x.joinedMs)
      if (leaves[0] !== undefined) { this.#lastShedMs = now; this.#moveLower(leaves[0], REDIRECT.move) }
    }
    this.#checkFilled(now)
  }

  /**
   * Churn leaves subtrees hanging deeper than they need to (an orphan takes
   * whatever slot it finds). Now and then a node whose backups show a spare
   * slot at least CLIMB_GAIN levels above its own moves there, keeping its
   * parent until the new one accepts: depth stays near log(N) under churn.
   */
  #maybeClimb (now: number): void {
    if (now - this.#lastClimbMs < CLIMB_INTERVAL_MS || now - this.#p!.sinceMs < CLIMB_INTERVAL_MS || now - this.#pathChangedMs < CLIMB_INTERVAL_MS) return
    this.#lastClimbMs = now
    // An ancestor is a fine target (moving up is no loop); a descendant never shows this shallow.
    const target = this.#p!.backups.find((b) => b.spare > 0 && b.depth + 1 + CLIMB_GAIN <= this.depth && b.nodeId !== this.#self && !this.#kids.has(b.nodeId))
    if (target === undefined) return
    this.join([target], 'climb')
  }

  /** Leave the tree politely: children are sent to their backups (our parent first), the parent is told. */
  leave (): void {
    for (const c of this.#kids.values()) this.#send(c.nodeId, 'redirect', REDIRECT.move, this.#backupsFor(c))
    this.#kids.clear()
    if (this.#p !== null) this.#send(this.#p.nodeId, 'leave')
    this.#p = null
    this.#attempt = null
  }

  close (): void {
    this.#closed = true
    this.#attempt = null
  }

  /** A control message for this stream (its fields after the stream id, FORMAT.md), ahead of queued chunks. */
  #send (nodeId: string, type: keyof typeof MSG, ...values: unknown[]): void {
    if (this.#t.send(nodeId, encodeMessage(type, [this.s.streamId, ...values]), { urgent: true })) {
      const c = this.#kids.get(nodeId)
      if (c !== undefined) c.lastSentMs = this.#now()
    }
  }
}
