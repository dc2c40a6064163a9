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
import type { Session } from './session'
import type { TransportSendOptions } from './transport'
import {
  FROM_NEWEST_KEY, JOIN_FLAGS, REDIRECT, REFUSE, encodeAccept, encodeGap, encodeHeartbeat, encodeJoin, encodeLeave, encodeRedirect,
  encodeRefuse, encodeReport, encodeStatus, type Candidate, type StreamMessage
} from './wire'

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
  startedMs: number
  stepStartedMs: number
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
  joinsAccepted: number
  redirectsSent: number
  refusals: number
  moves: number
  displaced: number
  reattaches: number
  /** Moves up to a shallower spare slot, without losing the parent first. */
  climbs: number
  gapRequests: number
  joinAttempts: number
  controlBytesOut: number
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
  parent: ParentState | null = null
  readonly children = new Map<string, ChildState>()
  readonly events: ReattachEvent[] = []
  readonly counters: TreeCounters = { joinsAccepted: 0, redirectsSent: 0, refusals: 0, moves: 0, displaced: 0, reattaches: 0, climbs: 0, gapRequests: 0, joinAttempts: 0, controlBytesOut: 0 }
  private attempt: Attempt | null = null
  private readonly blacklist = new Map<string, number>()
  private readonly attachedListeners: Array<() => void> = []
  private childIndex = 0
  private redirectTurn = 0
  private lastReportMs = 0
  private lastGapMs = 0
  private lastShedMs = 0
  private lastClimbMs = 0
  /** Monotonic ms our path last changed (no climbing while the tree above us settles). */
  private pathChangedMs = 0
  private closed = false

  constructor (private readonly s: Session) {}

  private get env () { return this.s.env }
  private get self (): string { return this.env.selfId }
  private now (): number { return this.env.clock.nowMs() }

  get attached (): boolean { return this.s.isSource || this.parent !== null }
  get joining (): boolean { return this.attempt !== null }
  /** Root..this node ([] when detached). */
  get path (): string[] { return this.s.isSource ? [this.self] : this.parent !== null ? [...this.parent.path, this.self] : [] }
  get depth (): number { return this.s.isSource ? 0 : this.parent !== null ? this.parent.path.length : -1 }
  get latencyMs (): number { return this.parent?.latencyMs ?? 0 }
  get subtree (): number { let n = 1; for (const c of this.children.values()) n += c.subtree; return n }

  capacity (): number {
    const rate = Math.max(this.s.isSource ? this.s.sourceBitrate : 0, this.s.bitrate, STREAM_BITRATE_FLOOR_BYTES_PER_SEC)
    return Math.min(this.env.settings.childrenMax, capacityFor(this.env.settings.uploadBytesPerSec, rate))
  }

  onAttached (fn: () => void): void {
    if (this.attached) fn()
    else this.attachedListeners.push(fn)
  }

  // ---- joining ------------------------------------------------------------------------------

  /** Start (or restart) joining: these targets first, the root last. */
  join (targets: readonly Candidate[], reason = 'join', formerParent: string | null = null): void {
    if (this.s.isSource || this.closed) return
    const now = this.now()
    this.attempt = { reason, queue: [...targets], tried: new Set(), redirects: 0, startedMs: now, stepStartedMs: now, current: null, joinSent: false, formerParent, retryAtMs: 0, retries: 0 }
    this.next()
  }

  private rootCandidate (): Candidate {
    return { nodeId: this.s.meta.sourceId, depth: 0, spare: 1, uptimeS: 0, port: 0, address: '' }
  }

  private next (): void {
    const a = this.attempt
    if (a === null) return
    const now = this.now()
    // Ancestors are fine (a climb joins one); descendants refuse us themselves (their path holds us).
    const usable = (id: string): boolean => id !== this.self && id !== this.parent?.nodeId && !a.tried.has(id) && !this.blacklisted(id) && !this.children.has(id)
    let target: Candidate | undefined
    while (target === undefined && a.queue.length > 0 && a.tried.size < STREAM_JOIN_TARGETS_MAX) {
      const c = a.queue.shift()!
      if (usable(c.nodeId)) target = c
    }
    // The root is the last resort of every attempt but a climb (which keeps its parent when nobody higher has room).
    if (target === undefined && a.reason !== 'climb' && usable(this.s.meta.sourceId)) target = this.rootCandidate()
    if (target !== undefined) {
      a.tried.add(target.nodeId)
      a.current = target.nodeId
      a.joinSent = false
      a.stepStartedMs = now
      this.counters.joinAttempts++
      this.env.transport.connect(target.address !== '' ? target : { nodeId: target.nodeId })
      if (this.env.transport.isUp(target.nodeId)) this.sendJoin()
      return
    }
    if (a.reason === 'climb') { this.attempt = null; return }
    // Nobody took us: try again from the root after a jittered backoff.
    a.current = null
    a.retries++
    const backoff = Math.min(JOIN_RETRY_MS_MAX, JOIN_RETRY_MS * 2 ** Math.min(5, a.retries - 1))
    a.retryAtMs = now + backoff / 2 + this.env.random.float() * backoff / 2
  }

  private sendJoin (): void {
    const a = this.attempt
    if (a === null || a.current === null || a.joinSent) return
    a.joinSent = true
    a.stepStartedMs = this.now()
    const from = this.s.nextSeq === -1 ? FROM_NEWEST_KEY : this.s.nextSeq
    this.control(a.current, encodeJoin({
      streamId: this.s.streamId,
      fromSeq: from,
      capacity: this.capacity(),
      uptimeS: this.env.uptimeS(),
      flags: a.formerParent !== null ? JOIN_FLAGS.orphan : 0,
      formerParent: a.formerParent ?? undefined
    }))
  }

  private onAccept (from: string, m: Extract<StreamMessage, { type: 'accept' }>): void {
    const a = this.attempt
    if (a === null || a.current !== from) return
    const staleClimb = a.reason === 'climb' && this.parent !== null && m.path.length + 1 + CLIMB_GAIN > this.parent.path.length + 1
    if (!this.pathAcceptable(m.path, from) || staleClimb) {
      // A loop, or a climb that would not climb (the slot we saw has moved down since): keep what we have.
      this.counters.refusals++
      this.control(from, encodeLeave(this.s.streamId))
      this.next()
      return
    }
    const now = this.now()
    const rtt = this.env.transport.rttMs(from)
    const previous = this.parent
    if (previous !== null && previous.nodeId !== from) this.control(previous.nodeId, encodeLeave(this.s.streamId)) // a climb: make before break
    this.parent = { nodeId: from, path: m.path, latencyMs: m.latencyMs + (rtt ?? 0) / 2, lastHeardMs: now, sinceMs: now, backups: [] }
    this.attempt = null
    this.s.acceptStart(m.startSeq)
    if (a.reason === 'climb') this.counters.climbs++
    const ev = this.events[this.events.length - 1]
    if (a.reason !== 'climb' && ev !== undefined && ev.attachedMs === null && ev.to === null) {
      ev.attachedMs = now
      ev.to = from
      this.counters.reattaches++
      this.checkFilled(now)
    }
    this.lastReportMs = 0
    for (const c of this.children.values()) this.sendStatus(c)
    for (const fn of this.attachedListeners.splice(0)) fn()
  }

  /** A path from a would-be parent: starts at our source, ends at the parent, never holds us, within the depth bound. */
  private pathAcceptable (path: readonly string[], parent: string): boolean {
    return path.length >= 1 && path.length < STREAM_DEPTH_MAX && path[0] === this.s.meta.sourceId &&
      path[path.length - 1] === parent && !path.includes(this.self) && new Set(path).size === path.length
  }

  private onRedirect (from: string, m: Extract<StreamMessage, { type: 'redirect' }>): void {
    const a = this.attempt
    if (a !== null && a.current === from) {
      a.redirects++
      const useful = a.reason === 'climb' ? m.candidates.filter((c) => c.depth + 1 + CLIMB_GAIN <= this.depth) : m.candidates
      if (a.redirects > STREAM_REDIRECTS_MAX) a.queue = []
      else a.queue.unshift(...useful)
      this.next()
      return
    }
    if (this.parent?.nodeId === from) {
      // Our parent moves us (we lag, or a stronger node took our slot).
      this.lose(m.reason === REDIRECT.displaced ? 'displaced' : 'moved', m.candidates, false)
    }
  }

  // ---- losing a parent -----------------------------------------------------------------------

  /** The parent is gone or unfit: record it and join the backups (or the candidates given). */
  private lose (reason: string, candidates: readonly Candidate[] | null, orphan: boolean): void {
    const old = this.parent
    if (old === null) return
    const now = this.now()
    this.parent = null
    if (reason !== 'dead' && reason !== 'link' && this.env.transport.isUp(old.nodeId)) this.control(old.nodeId, encodeLeave(this.s.streamId))
    this.events.push({ reason, from: old.nodeId, to: null, lastHeardMs: old.lastHeardMs, lostMs: now, attachedMs: null, filledMs: null, gapEnd: this.s.newestSeq })
    if (this.events.length > STREAM_EVENTS_MAX) this.events.shift()
    const targets = [...(candidates ?? []), ...old.backups].filter((t) => t.nodeId !== old.nodeId)
    this.join(targets, reason, orphan ? old.nodeId : null)
  }

  parentPolluted (why: string): void {
    const p = this.parent
    if (p === null) return
    this.env.log.warn('parent sent data that does not verify; replacing it', { stream: this.s.name, parent: p.nodeId, why })
    this.block(p.nodeId)
    this.lose('polluted', null, false)
  }

  private block (nodeId: string): void {
    if (this.blacklist.size >= BLACKLIST_COUNT_MAX) {
      const first = this.blacklist.keys().next().value
      if (first !== undefined) this.blacklist.delete(first)
    }
    this.blacklist.set(nodeId, this.now() + STREAM_BLACKLIST_MS)
  }

  private blacklisted (nodeId: string): boolean {
    const until = this.blacklist.get(nodeId)
    if (until === undefined) return false
    if (until > this.now()) return true
    this.blacklist.delete(nodeId)
    return false
  }

  private checkFilled (now: number): void {
    const ev = this.events[this.events.length - 1]
    if (ev !== undefined && ev.attachedMs !== null && ev.filledMs === null && this.s.nextSeq > ev.gapEnd) ev.filledMs = now
  }

  // ---- serving children ----------------------------------------------------------------------

  private onJoin (from: string, m: Extract<StreamMessage, { type: 'join' }>): void {
    const refuse = (reason: number): void => { this.counters.refusals++; this.control(from, encodeRefuse(this.s.streamId, reason)) }
    if (this.s.ended) return refuse(REFUSE.unknownStream)
    if (!this.attached) return refuse(REFUSE.notReady)
    const path = this.path
    if (path.includes(from)) return refuse(REFUSE.loop)
    if (path.length >= STREAM_DEPTH_MAX) return refuse(REFUSE.depth)
    const existing = this.children.get(from)
    if (existing !== undefined) { this.accept(from, m, existing.index); return }
    if (this.cannotFill(m.fromSeq) && this.parent !== null) {
      // The joiner needs chunks from before our ring starts (we joined after them): an older node up the path still
      // holds them; take the joiner only if nobody there will.
      const hint = this.env.transport.hint(this.parent.nodeId)
      const up: Candidate = { nodeId: this.parent.nodeId, depth: this.depth - 1, spare: 1, uptimeS: 0, port: hint?.port ?? 0, address: hint?.address ?? '' }
      this.counters.redirectsSent++
      this.control(from, encodeRedirect(this.s.streamId, REDIRECT.full, [up, ...this.spareFor(from).filter((c) => c.depth < this.depth)]))
      return
    }
    const now = this.now()
    const orphan = (m.flags & JOIN_FLAGS.orphan) !== 0
    if (this.children.size < this.capacity()) {
      // A node still paying one new child its catch-up sends the next joiner to spare slots elsewhere when there
      // are any: in a flash crowd the catch-up bursts spread over the tree instead of piling on one uplink.
      const elsewhere = !orphan && this.filling() > 0 ? this.spareFor(from) : []
      if (elsewhere.length === 0) { this.accept(from, m); return }
      this.counters.redirectsSent++
      this.control(from, encodeRedirect(this.s.streamId, REDIRECT.full, rotate(elsewhere, this.redirectTurn++)))
      return
    }
    if (orphan) {
      const dead = this.children.get(m.formerParent)
      if (dead !== undefined && now - dead.lastHeardMs >= this.env.settings.orphanSilenceMs) {
        this.children.delete(dead.nodeId)
        this.accept(from, m)
        return
      }
    }
    const victim = pickVictim([...this.children.values()], { capacity: m.capacity, uptimeS: m.uptimeS }, now)
    if (victim !== null) {
      const v = this.children.get(victim)!
      this.children.delete(victim)
      this.accept(from, m)
      const hint = this.env.transport.hint(from)
      const joiner: Candidate = { nodeId: from, depth: this.depth + 1, spare: m.capacity, uptimeS: m.uptimeS, port: hint?.port ?? 0, address: hint?.address ?? '' }
      this.counters.displaced++
      this.control(v.nodeId, encodeRedirect(this.s.streamId, REDIRECT.displaced, [joiner, ...this.spareFor(v.nodeId)]))
      return
    }
    const candidates = this.spareFor(from)
    if (candidates.length === 0) return refuse(REFUSE.full)
    this.counters.redirectsSent++
    this.control(from, encodeRedirect(this.s.streamId, REDIRECT.full, rotate(candidates, this.redirectTurn++)))
  }

  /** A joiner asks from fromSeq: do we lack chunks it still needs, that older members may hold? */
  private cannotFill (fromSeq: number): boolean {
    const s = this.s
    if (fromSeq === FROM_NEWEST_KEY || s.ring.size === 0 || fromSeq >= s.ring.oldest || fromSeq > s.newestSeq) return false
    const rate = s.chunkRate
    const ageMs = rate > 0 ? (s.newestSeq - fromSeq) * 1000 / rate : 0
    return ageMs < this.env.settings.playoutDelayMs
  }

  private accept (from: string, m: Extract<StreamMessage, { type: 'join' }>, index = this.childIndex++): void {
    const now = this.now()
    const start = this.s.startFor(m.fromSeq === FROM_NEWEST_KEY ? null : m.fromSeq)
    const c: ChildState = {
      nodeId: from, capacity: m.capacity, uptimeS: m.uptimeS, children: 0, subtree: 1, spare: [], nextSeq: start,
      joinedMs: now, lastHeardMs: now, lastSentMs: now, lastStatusMs: 0, lagSinceMs: 0, startSeq: start, fillNext: start, fillEnd: -1, lastGapMs: 0, index
    }
    this.children.set(from, c)
    this.counters.joinsAccepted++
    this.control(from, encodeAccept(this.s.streamId, start, this.latencyMs, this.path))
    this.sendStatus(c)
    this.owe(c, start, this.s.newestSeq)
  }

  /**
   * Owe a child the held chunks [from, to]: sent by fillStep() on the tick,
   * paced so catch-up never crowds out live chunks (which forward() sends at
   * once). The first slice goes now, so a new player's first byte does not
   * wait for a tick.
   */
  private owe (c: ChildState, from: number, to: number): void {
    if (to < from) return
    if (c.fillNext <= c.fillEnd) {
      // Already paying: what was sent is on its way (a GAP for it is only the child being impatient); just owe more.
      if (to > c.fillEnd) { this.s.sendBatches(c.nodeId, c.fillEnd + 1, to); c.fillEnd = to }
      return
    }
    this.s.sendBatches(c.nodeId, from, to)
    c.fillNext = from
    c.fillEnd = to
    this.fillStep(c, this.fillBudget() / Math.max(1, this.filling()))
  }

  /**
   * Chunks of catch-up per tick for all children together: twice the live
   * chunk rate (so a backlog shrinks at least as fast as the stream runs), or
   * what our spare upload carries if that is more.
   */
  private fillBudget (): number {
    const rate = Math.max(this.s.bitrate, STREAM_BITRATE_FLOOR_BYTES_PER_SEC)
    const spare = (this.env.settings.uploadBytesPerSec - this.children.size * rate) / rate
    const chunksPerSec = this.s.chunkRate > 0 ? this.s.chunkRate : FILL_CHUNKS_PER_SEC_UNKNOWN
    return Math.max(FILL_SPEEDUP, spare) * chunksPerSec * this.env.settings.heartbeatMs / 1000
  }

  private filling (): number {
    let n = 0
    for (const c of this.children.values()) if (c.fillNext <= c.fillEnd) n++
    return n
  }

  private fillStep (c: ChildState, budget: number): void {
    if (c.fillNext > c.fillEnd) return
    // At least one chunk per step, so a share smaller than a chunk still moves.
    c.fillNext = this.s.fill(c.nodeId, c.fillNext, c.fillEnd, Math.max(1, Math.round(budget)))
  }

  /** Spare slots in our subtree for a joiner (never the joiner itself or its own subtree as far as we know). */
  private spareFor (exclude: string): Candidate[] {
    const lists: Candidate[][] = []
    for (const c of this.children.values()) if (c.nodeId !== exclude) lists.push(this.withHint(c.nodeId, c.spare))
    return mergeCandidates(lists, new Set([exclude, this.self]))
  }

  /** Fill in the address of a direct child in its own entries (it cannot know how we see it). */
  private withHint (child: string, list: readonly Candidate[]): Candidate[] {
    const hint = this.env.transport.hint(child)
    if (hint === null) return [...list]
    return list.map((c) => (c.nodeId === child && c.address === '' ? { ...c, address: hint.address, port: hint.port } : c))
  }

  /** What we report upward (and answer FIND with): our own spare slots and the best of our subtree. */
  spare (): Candidate[] {
    const own: Candidate[] = []
    const free = this.capacity() - this.children.size
    if (this.attached && free > 0 && !this.s.ended) own.push({ nodeId: this.self, depth: this.depth, spare: free, uptimeS: this.env.uptimeS(), port: 0, address: '' })
    const lists: Candidate[][] = [own]
    for (const c of this.children.values()) lists.push(this.withHint(c.nodeId, c.spare))
    return mergeCandidates(lists, new Set())
  }

  /** Where child c should go if we die: our parent for one child, spare slots outside c's subtree for the others. */
  private backupsFor (c: ChildState): Candidate[] {
    const lists: Candidate[][] = []
    for (const o of this.children.values()) if (o.nodeId !== c.nodeId) lists.push(this.withHint(o.nodeId, o.spare))
    if (this.parent !== null) lists.push(this.parent.backups)
    // Our own free slots too: no use to c when we die (lose() skips us), but c passes them down to nodes deep
    // enough to climb to them.
    const free = this.capacity() - this.children.size
    if (free > 0) lists.push([{ nodeId: this.self, depth: this.depth, spare: free, uptimeS: this.env.uptimeS(), port: 0, address: '' }])
    const spare = mergeCandidates(lists, new Set([c.nodeId]), STREAM_CANDIDATES_MAX)
    const up: Candidate[] = []
    if (this.parent !== null) {
      // Our parent takes c in the slot we leave when we die (the orphan claim). Spare 0 unless it has free slots
      // now: an entry with spare 0 is never passed further down.
      const hint = this.env.transport.hint(this.parent.nodeId)
      const free = spare.find((x) => x.nodeId === this.parent!.nodeId)?.spare ?? 0
      up.push({ nodeId: this.parent.nodeId, depth: this.depth - 1, spare: free, uptimeS: 0, port: hint?.port ?? 0, address: hint?.address ?? '' })
    }
    return rotate([...up, ...spare.filter((x) => x.nodeId !== this.parent?.nodeId)], c.index).slice(0, STREAM_CANDIDATES_MAX)
  }

  private sendStatus (c: ChildState): void {
    c.lastStatusMs = this.now()
    this.control(c.nodeId, encodeStatus(this.s.streamId, this.latencyMs, this.path, this.backupsFor(c)))
  }

  /** A verified chunk: to every child that started at or before it. */
  forward (seq: number, frame: Buffer, deadlineMs: number): void {
    for (const c of this.children.values()) {
      // Older than its start, or still owed by catch-up (fillStep sends it in order).
      if (seq < c.startSeq || (seq >= c.fillNext && seq <= c.fillEnd)) continue
      this.sendChunk(c.nodeId, frame, deadlineMs)
    }
    if (this.events.length > 0) this.checkFilled(this.now())
  }

  /** One chunk to one child; tracks whether the child keeps up. False when refused (queue full). */
  sendChunk (nodeId: string, frame: Buffer, deadlineMs: number): boolean {
    const c = this.children.get(nodeId)
    const ok = this.env.transport.send(nodeId, frame, { expiresAtMs: deadlineMs })
    if (ok) this.s.counters.forwarded++
    else this.s.counters.droppedLate++
    if (c !== undefined) {
      const now = this.now()
      if (ok) c.lastSentMs = now
      const behind = !ok || this.env.transport.queuedBytes(nodeId) > Math.max(this.s.bitrate, STREAM_BITRATE_FLOOR_BYTES_PER_SEC) * LAG_QUEUE_SECONDS
      if (!behind) c.lagSinceMs = 0
      else if (c.lagSinceMs === 0) c.lagSinceMs = now
    }
    return ok
  }

  /** A frame for every child (signature batches, the end of the stream). */
  toChildren (frame: Buffer, options: TransportSendOptions): void {
    for (const c of this.children.values()) {
      if (this.env.transport.send(c.nodeId, frame, options)) c.lastSentMs = this.now()
    }
  }

  private onReport (c: ChildState, m: Extract<StreamMessage, { type: 'report' }>): void {
    c.children = m.children
    c.subtree = Math.max(1, m.subtree)
    c.capacity = m.capacity
    c.uptimeS = m.uptimeS
    c.nextSeq = m.nextSeq
    c.spare = m.spare
  }

  private moveLower (c: ChildState, reason: number): void {
    this.children.delete(c.nodeId)
    this.counters.moves++
    this.control(c.nodeId, encodeRedirect(this.s.streamId, reason, this.spareFor(c.nodeId)))
  }

  // ---- messages and time ------------------------------------------------------------------------

  /** Every stream message for this session from one peer. */
  onMessage (from: string, m: StreamMessage, frame: Buffer): void {
    const now = this.now()
    const parent = this.parent
    if (parent !== null && parent.nodeId === from) parent.lastHeardMs = now
    const child = this.children.get(from)
    if (child !== undefined) child.lastHeardMs = now
    switch (m.type) {
      case 'chunk':
      case 'sig':
      case 'end':
        if (parent === null || parent.nodeId !== from) { this.s.counters.stray++; return }
        this.s.onData(m, frame)
        return
      case 'join': this.onJoin(from, m); return
      case 'accept': this.onAccept(from, m); return
      case 'redirect': this.onRedirect(from, m); return
      case 'refuse':
        if (this.attempt?.current === from) this.next()
        return
      case 'leave':
        if (child !== undefined) this.children.delete(from)
        else if (parent?.nodeId === from) this.lose('left', null, false)
        return
      case 'status':
        if (parent?.nodeId !== from) return
        if (!this.pathAcceptable(m.path, from)) { this.lose('loop', null, false); return }
        if (m.path.length !== parent.path.length || m.path.some((id, i) => id !== parent.path[i])) {
          parent.path = m.path
          this.pathChangedMs = now
          for (const c of this.children.values()) this.sendStatus(c)
        }
        parent.latencyMs = m.latencyMs + (this.env.transport.rttMs(from) ?? 0) / 2
        parent.backups = m.backups
        return
      case 'report':
        if (child !== undefined) this.onReport(child, m)
        return
      case 'gap':
        if (child !== undefined && now - child.lastGapMs >= GAP_HONOUR_MS) {
          child.lastGapMs = now
          this.owe(child, m.fromSeq, m.fromSeq + m.count - 1)
        }
        return
      case 'heartbeat':
      case 'find':
      case 'found':
      case 'notFound':
    }
  }

  onUp (nodeId: string): void {
    if (this.attempt?.current === nodeId) this.sendJoin()
  }

  onDown (nodeId: string): void {
    if (this.parent?.nodeId === nodeId) this.lose('link', null, true)
    this.children.delete(nodeId)
    if (this.attempt?.current === nodeId) this.next()
  }

  tick (): void {
    if (this.closed) return
    const now = this.now()
    const st = this.env.settings
    const a = this.attempt
    if (a !== null) {
      if (a.current === null && now >= a.retryAtMs) { a.tried = new Set(); a.redirects = 0; a.queue = [this.rootCandidate()]; this.next() } else if (a.current !== null && now - a.stepStartedMs >= st.joinStepMs) this.next()
    }
    const p = this.parent
    if (p !== null && now - p.lastHeardMs >= st.deadAfterMs) this.lose('dead', null, true)
    else if (p !== null && a === null) this.maybeClimb(now)
    if (this.parent !== null && now - this.lastReportMs >= st.reportMs) {
      this.lastReportMs = now
      this.control(this.parent.nodeId, encodeReport({
        streamId: this.s.streamId, subtree: this.subtree, capacity: this.capacity(), children: this.children.size,
        uptimeS: this.env.uptimeS(), nextSeq: Math.max(0, this.s.nextSeq), spare: this.spare()
      }))
    }
    if (this.parent !== null) {
      const hole = this.s.checkHoles(now)
      if (hole !== null && now - this.lastGapMs >= Math.max(2 * st.heartbeatMs, 200)) {
        this.lastGapMs = now
        this.counters.gapRequests++
        this.control(this.parent.nodeId, encodeGapFor(this.s.streamId, hole.from, hole.count))
      }
    }
    const fillers = this.filling()
    if (fillers > 0) {
      const share = this.fillBudget() / fillers
      for (const c of this.children.values()) this.fillStep(c, share)
    }
    let shed = this.children.size - this.capacity()
    // A child is slow when it lags while a sibling keeps up; when every child lags, our own uplink is
    // the bottleneck and moving one of them would only add a repair. Only leaves move: a relay takes its subtree along.
    let keepingUp = 0
    for (const c of this.children.values()) if (c.lagSinceMs === 0) keepingUp++
    for (const c of [...this.children.values()]) {
      if (now - c.lastHeardMs >= st.childDeadMs) { this.children.delete(c.nodeId); continue }
      if (c.lagSinceMs !== 0 && now - c.lagSinceMs >= STREAM_LAG_MS && keepingUp > 0 && c.children === 0) { this.moveLower(c, REDIRECT.move); shed--; continue }
      if (now - c.lastStatusMs >= st.statusMs) this.sendStatus(c)
      else if (now - c.lastSentMs >= st.heartbeatMs) this.control(c.nodeId, encodeHeartbeat(this.s.streamId))
    }
    if (shed > 0 && now - this.lastShedMs >= 1_000) {
      // The bitrate rose above what our upload carries: move one leaf (or the newest child) down.
      const leaves = [...this.children.values()].sort((x, y) => x.children - y.children || y.joinedMs - x.joinedMs)
      if (leaves[0] !== undefined) { this.lastShedMs = now; this.moveLower(leaves[0], REDIRECT.move) }
    }
    this.checkFilled(now)
  }

  /**
   * Churn leaves subtrees hanging deeper than they need to (an orphan takes
   * whatever slot it finds). Now and then a node whose backups show a spare
   * slot at least CLIMB_GAIN levels above its own moves there, keeping its
   * parent until the new one accepts: depth stays near log(N) under churn.
   */
  private maybeClimb (now: number): void {
    if (now - this.lastClimbMs < CLIMB_INTERVAL_MS || now - this.parent!.sinceMs < CLIMB_INTERVAL_MS || now - this.pathChangedMs < CLIMB_INTERVAL_MS) return
    this.lastClimbMs = now
    // An ancestor is a fine target (moving up is no loop); a descendant never shows this shallow.
    const target = this.parent!.backups.find((b) => b.spare > 0 && b.depth + 1 + CLIMB_GAIN <= this.depth && b.nodeId !== this.self && !this.children.has(b.nodeId))
    if (target === undefined) return
    this.join([target], 'climb')
  }

  /** Leave the tree politely: children are sent to their backups (our parent first), the parent is told. */
  leave (): void {
    for (const c of this.children.values()) this.control(c.nodeId, encodeRedirect(this.s.streamId, REDIRECT.move, this.backupsFor(c)))
    this.children.clear()
    if (this.parent !== null) this.control(this.parent.nodeId, encodeLeave(this.s.streamId))
    this.parent = null
    this.attempt = null
  }

  close (): void {
    this.closed = true
    this.attempt = null
  }

  /** A control frame, ahead of queued chunks. */
  private control (nodeId: string, frame: Buffer): void {
    if (this.env.transport.send(nodeId, frame, { urgent: true })) {
      this.counters.controlBytesOut += frame.length
      const c = this.children.get(nodeId)
      if (c !== undefined) c.lastSentMs = this.now()
    }
  }
}

const encodeGapFor = (streamId: string, from: number, count: number): Buffer => encodeGap(streamId, from, Math.min(0xffff, count))
