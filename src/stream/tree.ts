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
import { URGENT, type TransportSendOptions } from './transport'
import { FROM_NEWEST_KEY, JOIN_FLAGS, MSG, REDIRECT, REFUSE, encodeMessage, type Candidate, type StreamMessage } from './wire'

export interface ParentState {
  nodeId: string
  /** Root..parent. */
  path: string[]
  latencyMs: number
  heard: number
  sinceMs: number
  backups: Candidate[]
}

export interface ChildState {
  id: string
  capacity: number
  uptimeS: number
  /** From its latest REPORT. */
  children: number
  subtree: number
  spare: Candidate[]
  nextSeq: number
  /** Monotonic ms: joined, last heard from, last sent to, last STATUS sent, lagging since (0: keeps up). */
  joinedMs: number
  heard: number
  sent: number
  statusMs: number
  lag: number
  /** The seq it started at. */
  start: number
  /** Catch-up still owed to this child (a new child's start, a gap it asked for): [fillAt, fillTo]. */
  fillAt: number
  fillTo: number
  /** Monotonic ms of the last GAP honoured (a child cannot make us resend the ring in a loop). */
  gapMs: number
  index: number
}

/** One re-attach: when the parent was last heard, declared lost, replaced, and the gap filled. */
export interface ReattachEvent {
  reason: string
  from: string
  to: string | null
  heard: number
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

type Msg<T extends StreamMessage['type']> = Extract<StreamMessage, { type: T }>

export type Tree = ReturnType<typeof createTree>

/**
 * The tree state of session s. A closure rather than a class: its state is
 * private by construction (and minifies to short names, where class fields
 * would keep theirs).
 */
export function createTree (s: Session) {
  const env = s.env
  const t = env.transport
  const self = env.selfId
  const st = env.settings
  const { isSource, meta: { sourceId } } = s
  const kids = new Map<string, ChildState>()
  const events: ReattachEvent[] = []
  const counters: TreeCounters = { refusals: 0, moves: 0, displaced: 0, reattaches: 0, climbs: 0 }
  const blacklist = new Map<string, number>()
  const attachedListeners: Array<() => void> = []
  let parent: ParentState | null = null
  // The join attempt under way (joinReason null: none): targets still to try, those tried, redirects
  // followed, the target asked now and since when, whether our JOIN went out, the parent we lost (an
  // orphan's claim), and when to start over from the root after everyone refused.
  let joinReason: string | null = null
  let queue: Candidate[] = []
  let tried = new Set<string>()
  let redirects = 0
  let stepMs = 0
  let current: string | null = null
  let joinSent = false
  let formerParent: string | null = null
  let retryAtMs = 0
  let retries = 0
  let childIndex = 0
  let redirectTurn = 0
  let lastReportMs = 0
  let gapMs = 0
  let lastShedMs = 0
  let lastClimbMs = 0
  /** Monotonic ms our path last changed (no climbing while the tree above us settles). */
  let pathChangedMs = 0
  let closed = false

  const now = (): number => env.clock.nowMs()
  const attached = (): boolean => isSource || parent !== null
  /** Root..this node ([] when detached). */
  const path = (): string[] => isSource ? [self] : parent !== null ? [...parent.path, self] : []
  const depth = (): number => isSource ? 0 : parent !== null ? parent.path.length : -1
  const latencyMs = (): number => parent?.latencyMs ?? 0
  const subtree = (): number => { let n = 1; kids.forEach((c) => { n += c.subtree }); return n }

  /** Bytes/s to plan with: the stream's bitrate, never below the floor. */
  const rate = (): number => Math.max(s.bitrate, STREAM_BITRATE_FLOOR_BYTES_PER_SEC)

  function capacity (): number {
    return Math.min(st.childrenMax, capacityFor(st.uploadBytesPerSec, Math.max(isSource ? s.sourceBitrate : 0, rate())))
  }

  /** A control message for this stream (its fields after the stream id, FORMAT.md), ahead of queued chunks. */
  function send (nodeId: string, type: keyof typeof MSG, ...values: unknown[]): void {
    if (t.send(nodeId, encodeMessage(type, [s.streamId, ...values]), URGENT)) {
      const c = kids.get(nodeId)
      if (c !== undefined) c.sent = now()
    }
  }

  /** A candidate entry for nodeId, with where we reach it when it is linked to us (it cannot know how we see it). */
  function cand (nodeId: string, depth: number, spare: number, uptimeS = 0): Candidate {
    const hint = t.hint(nodeId)
    return { nodeId, depth, spare, uptimeS, port: hint?.port ?? 0, address: hint?.address ?? '' }
  }

  /** The stream's source as a join target. */
  const root = (): Candidate => cand(sourceId, 0, 1)

  // ---- joining ------------------------------------------------------------------------------

  /** Start (or restart) joining: these targets first, the root last. */
  function join (targets: readonly Candidate[], reason = 'join', former: string | null = null): void {
    if (isSource || closed) return
    joinReason = reason
    queue = [...targets]
    tried = new Set()
    redirects = retries = 0
    current = null
    formerParent = former
    next()
  }

  function next (): void {
    if (joinReason === null) return
    const ms = now()
    const climb = joinReason === 'climb'
    // Ancestors are fine (a climb joins one); descendants refuse us themselves (their path holds us).
    const usable = (id: string): boolean => id !== self && id !== parent?.nodeId && !tried.has(id) && !blacklisted(id) && !kids.has(id)
    let target: Candidate | undefined
    while (target === undefined && queue.length > 0 && tried.size < STREAM_JOIN_TARGETS_MAX) {
      const c = queue.shift()!
      if (usable(c.nodeId)) target = c
    }
    // The root is the last resort of every attempt but a climb (which keeps its parent when nobody higher has room).
    if (target === undefined && !climb && usable(sourceId)) target = root()
    if (target !== undefined) {
      const id = current = target.nodeId
      tried.add(id)
      joinSent = false
      stepMs = ms
      t.connect(target.address !== '' ? target : { nodeId: id })
      if (t.isUp(id)) sendJoin()
      return
    }
    current = null
    if (climb) { joinReason = null; return }
    // Nobody took us: try again from the root after a jittered backoff.
    retries++
    const backoff = Math.min(JOIN_RETRY_MS_MAX, JOIN_RETRY_MS * 2 ** Math.min(5, retries - 1))
    retryAtMs = ms + backoff / 2 + env.random.float() * backoff / 2
  }

  function sendJoin (): void {
    if (current === null || joinSent) return
    joinSent = true
    stepMs = now()
    send(current, 'join', s.nextSeq === -1 ? FROM_NEWEST_KEY : s.nextSeq, capacity(), env.uptimeS(), formerParent !== null ? JOIN_FLAGS.orphan : 0, formerParent ?? undefined)
  }

  function onAccept (from: string, m: Msg<'accept'>): void {
    if (current !== from) return
    const climb = joinReason === 'climb'
    if (!pathAcceptable(m.path, from) || (climb && parent !== null && m.path.length + 1 + CLIMB_GAIN > parent.path.length + 1)) {
      // A loop, or a climb that would not climb (the slot we saw has moved down since): keep what we have.
      counters.refusals++
      send(from, 'leave')
      next()
      return
    }
    const ms = now()
    if (parent !== null && parent.nodeId !== from) send(parent.nodeId, 'leave') // a climb: make before break
    parent = { nodeId: from, path: m.path, latencyMs: m.latencyMs + (t.rttMs(from) ?? 0) / 2, heard: ms, sinceMs: ms, backups: [] }
    joinReason = current = null
    s.acceptStart(m.startSeq)
    if (climb) counters.climbs++
    const ev = events.at(-1)
    if (!climb && ev !== undefined && ev.attachedMs === null && ev.to === null) {
      ev.attachedMs = ms
      ev.to = from
      counters.reattaches++
      checkFilled(ms)
    }
    lastReportMs = 0
    kids.forEach(sendStatus)
    for (const fn of attachedListeners.splice(0)) fn()
  }

  /** A path from a would-be parent: starts at our source, ends at the parent, never holds us, within the depth bound. */
  const pathAcceptable = (p: readonly string[], from: string): boolean =>
    p.length >= 1 && p.length < STREAM_DEPTH_MAX && p[0] === sourceId && p[p.length - 1] === from && !p.includes(self) && new Set(p).size === p.length

  function onRedirect (from: string, m: Msg<'redirect'>): void {
    if (current === from) {
      if (++redirects > STREAM_REDIRECTS_MAX) queue = []
      else queue.unshift(...(joinReason === 'climb' ? m.candidates.filter((c) => c.depth + 1 + CLIMB_GAIN <= depth()) : m.candidates))
      next()
    } else if (parent?.nodeId === from) {
      // Our parent moves us (we lag, or a stronger node took our slot).
      lose(m.reason === REDIRECT.displaced ? 'displaced' : 'moved', m.candidates)
    }
  }

  // ---- losing a parent -----------------------------------------------------------------------

  /** The parent is gone or unfit: record it and join the backups (or the candidates given); an orphan claims its old slot. */
  function lose (reason: string, candidates: readonly Candidate[] = [], orphan = false): void {
    const old = parent
    if (old === null) return
    parent = null
    if (reason !== 'dead' && reason !== 'link' && t.isUp(old.nodeId)) send(old.nodeId, 'leave')
    events.push({ reason, from: old.nodeId, to: null, heard: old.heard, lostMs: now(), attachedMs: null, filledMs: null, gapEnd: s.newestSeq })
    if (events.length > STREAM_EVENTS_MAX) events.shift()
    join([...candidates, ...old.backups].filter((c) => c.nodeId !== old.nodeId), reason, orphan ? old.nodeId : null)
  }

  /** Blacklist a node for STREAM_BLACKLIST_MS (the oldest entry goes when full; expired ones simply stop counting). */
  function block (nodeId: string): void {
    if (blacklist.size >= BLACKLIST_COUNT_MAX) blacklist.delete(blacklist.keys().next().value!)
    blacklist.delete(nodeId)
    blacklist.set(nodeId, now() + STREAM_BLACKLIST_MS)
  }

  const blacklisted = (nodeId: string): boolean => (blacklist.get(nodeId) ?? 0) > now()

  function checkFilled (ms: number): void {
    const ev = events.at(-1)
    if (ev !== undefined && ev.attachedMs !== null && ev.filledMs === null && s.nextSeq > ev.gapEnd) ev.filledMs = ms
  }

  // ---- serving children ----------------------------------------------------------------------

  function onJoin (from: string, m: Msg<'join'>): void {
    const refuse = (reason: number): void => { counters.refusals++; send(from, 'refuse', reason) }
    const redirect = (to: string, reason: number, cs: Candidate[]): void => send(to, 'redirect', reason, cs)
    if (s.ended) return refuse(REFUSE.unknownStream)
    if (!attached()) return refuse(REFUSE.notReady)
    const p = path()
    if (p.includes(from)) return refuse(REFUSE.loop)
    if (p.length >= STREAM_DEPTH_MAX) return refuse(REFUSE.depth)
    const existing = kids.get(from)
    if (existing !== undefined) return accept(from, m, existing.index)
    const d = depth()
    if (parent !== null && cannotFill(m.fromSeq)) {
      // The joiner needs chunks from before our ring starts (we joined after them): an older node up the path still
      // holds them; take the joiner only if nobody there will.
      return redirect(from, REDIRECT.full, [cand(parent.nodeId, d - 1, 1), ...spareFor(from).filter((c) => c.depth < d)])
    }
    const orphan = (m.flags & JOIN_FLAGS.orphan) !== 0
    if (kids.size < capacity()) {
      // A node still paying one new child its catch-up sends the next joiner to spare slots elsewhere when there
      // are any: in a flash crowd the catch-up bursts spread over the tree instead of piling on one uplink.
      const elsewhere = !orphan && filling() > 0 ? spareFor(from) : []
      return elsewhere.length === 0 ? accept(from, m) : redirect(from, REDIRECT.full, rotate(elsewhere, redirectTurn++))
    }
    const ms = now()
    const dead = orphan ? kids.get(m.formerParent) : undefined
    if (dead !== undefined && ms - dead.heard >= st.orphanSilenceMs) {
      kids.delete(dead.id)
      return accept(from, m)
    }
    const victim = pickVictim([...kids.values()], m, ms)
    if (victim !== null) {
      kids.delete(victim)
      accept(from, m)
      counters.displaced++
      return redirect(victim, REDIRECT.displaced, [cand(from, d + 1, m.capacity, m.uptimeS), ...spareFor(victim)])
    }
    const candidates = spareFor(from)
    if (candidates.length === 0) return refuse(REFUSE.full)
    redirect(from, REDIRECT.full, rotate(candidates, redirectTurn++))
  }

  /** A joiner asks from fromSeq: do we lack chunks it still needs, that older members may hold? */
  function cannotFill (fromSeq: number): boolean {
    if (fromSeq === FROM_NEWEST_KEY || s.ring.size === 0 || fromSeq >= s.ring.oldest || fromSeq > s.newestSeq) return false
    const rate = s.chunkRate
    return (rate > 0 ? (s.newestSeq - fromSeq) * 1000 / rate : 0) < st.playoutDelayMs
  }

  function accept (from: string, m: Msg<'join'>, index = childIndex++): void {
    const ms = now()
    const start = s.startFor(m.fromSeq === FROM_NEWEST_KEY ? null : m.fromSeq)
    const c: ChildState = {
      id: from, capacity: m.capacity, uptimeS: m.uptimeS, children: 0, subtree: 1, spare: [], nextSeq: start,
      joinedMs: ms, heard: ms, sent: ms, statusMs: 0, lag: 0, start, fillAt: start, fillTo: -1, gapMs: 0, index
    }
    kids.set(from, c)
    send(from, 'accept', start, latencyMs(), path())
    sendStatus(c)
    owe(c, start, s.newestSeq)
  }

  /**
   * Owe a child the held chunks [from, to]: sent by fillStep() on the tick,
   * paced so catch-up never crowds out live chunks (which forward() sends at
   * once). The first slice goes now, so a new player's first byte does not
   * wait for a tick.
   */
  function owe (c: ChildState, from: number, to: number): void {
    if (to < from) return
    if (c.fillAt <= c.fillTo) {
      // Already paying: what was sent is on its way (a GAP for it is only the child being impatient); just owe more.
      if (to > c.fillTo) { s.sendBatches(c.id, c.fillTo + 1, to); c.fillTo = to }
      return
    }
    s.sendBatches(c.id, from, to)
    c.fillAt = from
    c.fillTo = to
    fillStep(c, fillBudget() / Math.max(1, filling()))
  }

  /**
   * Chunks of catch-up per tick for all children together: twice the live
   * chunk rate (so a backlog shrinks at least as fast as the stream runs), or
   * what our spare upload carries if that is more.
   */
  function fillBudget (): number {
    const r = rate()
    const spare = (st.uploadBytesPerSec - kids.size * r) / r
    return Math.max(FILL_SPEEDUP, spare) * (s.chunkRate > 0 ? s.chunkRate : FILL_CHUNKS_PER_SEC_UNKNOWN) * st.heartbeatMs / 1000
  }

  function filling (): number {
    let n = 0
    kids.forEach((c) => { if (c.fillAt <= c.fillTo) n++ })
    return n
  }

  function fillStep (c: ChildState, budget: number): void {
    // At least one chunk per step, so a share smaller than a chunk still moves.
    if (c.fillAt <= c.fillTo) c.fillAt = s.fill(c.id, c.fillAt, c.fillTo, Math.max(1, Math.round(budget)))
  }

  /**
   * The spare slots our children reported, but not those of `exclude` (a
   * joiner's own subtree), each child's own entry with the address we reach
   * it at (it cannot know how we see it); and our own free slots if `own`.
   */
  function spareLists (exclude: string, own: boolean): Candidate[][] {
    const lists: Candidate[][] = []
    for (const c of kids.values()) {
      if (c.id === exclude) continue
      const hint = t.hint(c.id)
      lists.push(c.spare.map((x) => (hint !== null && x.nodeId === c.id && x.address === '' ? { ...x, address: hint.address, port: hint.port } : x)))
    }
    const free = capacity() - kids.size
    if (own && free > 0) lists.push([cand(self, depth(), free, env.uptimeS())])
    return lists
  }

  /** Spare slots in our subtree for a joiner (never the joiner itself or its own subtree as far as we know). */
  const spareFor = (exclude: string): Candidate[] => mergeCandidates(spareLists(exclude, false), new Set([exclude, self]))

  /** What we report upward (and answer FIND with): our own spare slots and the best of our subtree. */
  const spare = (): Candidate[] => mergeCandidates(spareLists('', attached() && !s.ended), new Set())

  /** Where child c should go if we die: our parent for one child, spare slots outside c's subtree for the others. */
  function backupsFor (c: ChildState): Candidate[] {
    // Our own free slots too: no use to c when we die (lose() skips us), but c passes them down to nodes deep
    // enough to climb to them.
    const lists = spareLists(c.id, true)
    if (parent === null) return rotate(mergeCandidates(lists, new Set([c.id])), c.index)
    const up = parent.nodeId
    lists.push(parent.backups)
    const merged = mergeCandidates(lists, new Set([c.id]))
    // Our parent takes c in the slot we leave when we die (the orphan claim). Spare 0 unless it has free slots
    // now: an entry with spare 0 is never passed further down.
    const first = cand(up, depth() - 1, merged.find((x) => x.nodeId === up)?.spare ?? 0)
    return rotate([first, ...merged.filter((x) => x.nodeId !== up)], c.index).slice(0, STREAM_CANDIDATES_MAX)
  }

  function sendStatus (c: ChildState): void {
    c.statusMs = now()
    send(c.id, 'status', latencyMs(), path(), backupsFor(c))
  }

  /** One chunk to one child; tracks whether the child keeps up. False when refused (queue full). */
  function sendChunk (nodeId: string, frame: Buffer, deadlineMs: number): boolean {
    const c = kids.get(nodeId)
    const ok = t.send(nodeId, frame, { expiresAtMs: deadlineMs })
    if (ok) s.counters.forwarded++
    else s.counters.droppedLate++
    if (c !== undefined) {
      const ms = now()
      if (ok) c.sent = ms
      if (ok && t.queuedBytes(nodeId) <= rate() * LAG_QUEUE_SECONDS) c.lag = 0
      else if (c.lag === 0) c.lag = ms
    }
    return ok
  }

  function moveLower (c: ChildState): void {
    kids.delete(c.id)
    counters.moves++
    send(c.id, 'redirect', REDIRECT.move, spareFor(c.id))
  }

  // ---- messages and time ------------------------------------------------------------------------

  /** Every stream message for this session from one peer. */
  function onMessage (from: string, m: StreamMessage, frame: Buffer): void {
    const ms = now()
    const p = parent?.nodeId === from ? parent : null
    if (p !== null) p.heard = ms
    const child = kids.get(from)
    if (child !== undefined) child.heard = ms
    switch (m.type) {
      case 'chunk':
      case 'sig':
      case 'end':
        if (p === null) s.counters.stray++
        else s.onData(m, frame)
        return
      case 'join': return onJoin(from, m)
      case 'accept': return onAccept(from, m)
      case 'redirect': return onRedirect(from, m)
      case 'refuse':
        if (current === from) next()
        return
      case 'leave':
        if (child !== undefined) kids.delete(from)
        else if (p !== null) lose('left')
        return
      case 'status':
        if (p === null) return
        if (!pathAcceptable(m.path, from)) return lose('loop')
        if (m.path.length !== p.path.length || m.path.some((id, i) => id !== p.path[i])) {
          p.path = m.path
          pathChangedMs = ms
          kids.forEach(sendStatus)
        }
        p.latencyMs = m.latencyMs + (t.rttMs(from) ?? 0) / 2
        p.backups = m.backups
        return
      case 'report':
        // children, capacity, uptimeS, nextSeq, spare (and the message's own type and streamId, unused) as reported.
        if (child !== undefined) Object.assign(child, m, { subtree: Math.max(1, m.subtree) })
        return
      case 'gap':
        if (child !== undefined && ms - child.gapMs >= GAP_HONOUR_MS) {
          child.gapMs = ms
          owe(child, m.fromSeq, m.fromSeq + m.count - 1)
        }
    }
  }

  function tick (): void {
    if (closed) return
    const ms = now()
    const joining = joinReason !== null
    if (joining) {
      if (current === null && ms >= retryAtMs) { tried = new Set(); redirects = 0; queue = [root()]; next() } else if (current !== null && ms - stepMs >= st.joinStepMs) next()
    }
    if (parent !== null) {
      if (ms - parent.heard >= st.deadAfterMs) lose('dead', [], true)
      else if (!joining) maybeClimb(ms)
    }
    if (parent !== null) {
      if (ms - lastReportMs >= st.reportMs) {
        lastReportMs = ms
        send(parent.nodeId, 'report', subtree(), capacity(), kids.size, env.uptimeS(), Math.max(0, s.nextSeq), spare())
      }
      const hole = s.checkHoles(ms)
      if (hole !== null && ms - gapMs >= Math.max(2 * st.heartbeatMs, 200)) {
        gapMs = ms
        send(parent.nodeId, 'gap', hole.from, hole.count)
      }
    }
    const fillers = filling()
    if (fillers > 0) {
      const share = fillBudget() / fillers
      kids.forEach((c) => { fillStep(c, share) })
    }
    let shed = kids.size - capacity()
    // A child is slow when it lags while a sibling keeps up; when every child lags, our own uplink is
    // the bottleneck and moving one of them would only add a repair. Only leaves move: a relay takes its subtree along.
    let keepingUp = 0
    kids.forEach((c) => { if (c.lag === 0) keepingUp++ })
    for (const c of [...kids.values()]) {
      if (ms - c.heard >= st.childDeadMs) kids.delete(c.id)
      else if (c.lag !== 0 && ms - c.lag >= STREAM_LAG_MS && keepingUp > 0 && c.children === 0) { moveLower(c); shed-- } else if (ms - c.statusMs >= st.statusMs) sendStatus(c)
      else if (ms - c.sent >= st.heartbeatMs) send(c.id, 'heartbeat')
    }
    if (shed > 0 && ms - lastShedMs >= 1_000) {
      // The bitrate rose above what our upload carries: move one leaf (or the newest child) down.
      const leaf = [...kids.values()].sort((x, y) => x.children - y.children || y.joinedMs - x.joinedMs)[0]
      if (leaf !== undefined) { lastShedMs = ms; moveLower(leaf) }
    }
    checkFilled(ms)
  }

  /**
   * Churn leaves subtrees hanging deeper than they need to (an orphan takes
   * whatever slot it finds). Now and then a node whose backups show a spare
   * slot at least CLIMB_GAIN levels above its own moves there, keeping its
   * parent until the new one accepts: depth stays near log(N) under churn.
   */
  function maybeClimb (ms: number): void {
    if (ms - lastClimbMs < CLIMB_INTERVAL_MS || ms - parent!.sinceMs < CLIMB_INTERVAL_MS || ms - pathChangedMs < CLIMB_INTERVAL_MS) return
    lastClimbMs = ms
    // An ancestor is a fine target (moving up is no loop); a descendant never shows this shallow.
    const target = parent!.backups.find((b) => b.spare > 0 && b.depth + 1 + CLIMB_GAIN <= depth() && b.nodeId !== self && !kids.has(b.nodeId))
    if (target !== undefined) join([target], 'climb')
  }

  return {
    s,
    events,
    counters,
    /** Our parent, null when detached. */
    get parent (): ParentState | null { return parent },
    /** This node's children by node id. */
    get children (): ReadonlyMap<string, ChildState> { return kids },
    get attached (): boolean { return attached() },
    get path (): string[] { return path() },
    get depth (): number { return depth() },
    get latencyMs (): number { return latencyMs() },
    get subtree (): number { return subtree() },
    capacity,
    root,
    join,
    spare,
    sendChunk,
    onMessage,
    tick,

    onAttached (fn: () => void): void {
      if (attached()) fn()
      else attachedListeners.push(fn)
    },

    parentPolluted (why: string): void {
      if (parent === null) return
      env.log.warn('parent polluted; replaced', { stream: s.name, parent: parent.nodeId, why })
      block(parent.nodeId)
      lose('polluted')
    },

    /** A verified chunk: to every child that started at or before it. */
    forward (seq: number, frame: Buffer, deadlineMs: number): void {
      kids.forEach((c) => {
        // Older than its start, or still owed by catch-up (fillStep sends it in order).
        if (seq >= c.start && (seq < c.fillAt || seq > c.fillTo)) sendChunk(c.id, frame, deadlineMs)
      })
      if (events.length > 0) checkFilled(now())
    },

    /** A frame for every child (signature batches, the end of the stream). */
    toChildren (frame: Buffer, options: TransportSendOptions): void {
      kids.forEach((c) => { if (t.send(c.id, frame, options)) c.sent = now() })
    },

    onUp (nodeId: string): void {
      if (current === nodeId) sendJoin()
    },

    onDown (nodeId: string): void {
      if (parent?.nodeId === nodeId) lose('link', [], true)
      kids.delete(nodeId)
      if (current === nodeId) next()
    },

    /** Leave the tree politely: children are sent to their backups (our parent first), the parent is told. */
    leave (): void {
      kids.forEach((c) => { send(c.id, 'redirect', REDIRECT.move, backupsFor(c)) })
      kids.clear()
      if (parent !== null) send(parent.nodeId, 'leave')
      parent = null
      joinReason = current = null
    },

    close (): void {
      closed = true
      joinReason = current = null
    }
  }
}
