// All streams of one node: the sessions it takes part in (as source, relay
// or player), finding a stream by name among the peers, the transport's
// events routed to sessions, the tick that drives heartbeats, and leaving a
// tree when nobody here needs the stream any more.
//
// Finding NAME: ask up to STREAM_FIND_PEERS_MAX peers at once (linked peers
// first, then the directory at random) with FIND; a member answers FOUND with
// the signed meta, the root id and its spare slots; a node that only heard of
// the stream answers with meta and root. The first FOUND whose meta verifies,
// is named NAME and is rooted at its source wins; the joiner then tries the
// spare slots, and the root last.

import type { KeyObject } from 'node:crypto'
import { CanopyError } from '../errors'
import type { Timer } from '../hal'
import { FRAME_HEADER_BYTES } from '../protocol/link'
import { STREAM_COUNT_MAX, STREAM_FIND_PEERS_MAX, STREAM_KNOWN_MAX } from '../limits'
import { createMeta, decodeMeta, STREAM_NAME_PATTERN, type StreamMeta } from './meta'
import { Session, type SessionEnv } from './session'
import type { PeerRef } from './transport'
import { decodeMessage, encodeFind, encodeFound, encodeNotFound, encodeRefuse, REFUSE, type Candidate, type StreamMessage } from './wire'

export interface SourceIdentity { readonly publicKey: Buffer, readonly privateKey: KeyObject }

export interface Found { meta: StreamMeta, rootId: string, bitrate: number, candidates: Candidate[] }

interface FindState {
  name: string
  waiting: Set<string>
  resolve: (f: Found) => void
  reject: (e: CanopyError) => void
  timer: Timer
}

export interface StreamsCounters {
  malformed: number
  unknownStream: number
  findsSent: number
  findsAnswered: number
  foundRejected: number
}

/** A name is remembered (meta + root) this long after a FOUND or a membership. */
const KNOWN_MS = 60_000
const FIND_RETRY_MS = 250

export class Streams {
  readonly sessions = new Map<string, Session>()
  readonly counters: StreamsCounters = { malformed: 0, unknownStream: 0, findsSent: 0, findsAnswered: 0, foundRejected: 0 }
  private readonly byName = new Map<string, string>()
  private readonly known = new Map<string, { found: Found, atMs: number }>()
  private readonly finds = new Map<number, FindState>()
  private readonly users = new Map<string, number>()
  private readonly idleSince = new Map<string, number>()
  private readonly joining = new Map<string, Promise<Session>>()
  /** Called, synchronously, for every session as it is created (metrics, simulations). */
  readonly sessionListeners: Array<(s: Session) => void> = []
  private nextFindId = 1
  private timer: Timer | null = null
  private stopped = false

  constructor (readonly env: SessionEnv, private readonly identity: SourceIdentity) {
    env.transport.setHandler({
      up: (id) => { this.onUp(id) },
      down: (id) => { this.onDown(id) },
      frame: (id, frame) => { this.onFrame(id, frame) }
    })
  }

  start (): void {
    this.timer = this.env.clock.setInterval(() => { this.tick() }, this.env.settings.heartbeatMs)
  }

  stop (): void {
    this.stopped = true
    this.timer?.cancel()
    for (const f of this.finds.values()) { f.timer.cancel(); f.reject(new CanopyError('CLOSED', 'streams stopped')) }
    this.finds.clear()
    for (const s of this.sessions.values()) {
      if (s.isSource) s.end()
      else s.tree.leave()
      s.close()
    }
    this.sessions.clear()
    this.byName.clear()
  }

  get (name: string): Session | undefined {
    const id = this.byName.get(name)
    return id === undefined ? undefined : this.sessions.get(id)
  }

  list (): Session[] { return [...this.sessions.values()] }

  // ---- source -------------------------------------------------------------------------

  /** A new stream rooted here (the ingest calls publish/end on it). */
  publish (name: string): Session {
    if (!STREAM_NAME_PATTERN.test(name)) throw new CanopyError('INPUT_INVALID', 'a stream name is 1-64 of A-Z a-z 0-9 . _ -')
    const old = this.get(name)
    if (old !== undefined && !old.ended) throw new CanopyError('STREAM_BUSY', `stream ${name} is already ${old.isSource ? 'being pushed' : 'relayed'} here`)
    if (old !== undefined) this.remove(old)
    this.checkRoom()
    const meta = createMeta({ name, sourceKey: this.identity.publicKey, privateKey: this.identity.privateKey, nonce: this.env.random.bytes(8) })
    const s = new Session(this.env, meta, true, this.identity.privateKey)
    this.add(s)
    return s
  }

  // ---- members ---------------------------------------------------------------------------

  /** Find and join a stream, or take the session already here; the caller must release() it. */
  async subscribe (name: string, deadlineMs: number): Promise<Session> {
    const existing = this.get(name)
    const s = existing !== undefined && !existing.ended ? existing : await this.joinShared(name, deadlineMs)
    this.users.set(s.streamId, (this.users.get(s.streamId) ?? 0) + 1)
    this.idleSince.delete(s.streamId)
    if (!s.tree.attached) await this.whenAttached(s, deadlineMs)
    return s
  }

  release (s: Session): void {
    const n = (this.users.get(s.streamId) ?? 1) - 1
    if (n > 0) this.users.set(s.streamId, n)
    else this.users.delete(s.streamId)
  }

  private joinShared (name: string, deadlineMs: number): Promise<Session> {
    const pending = this.joining.get(name)
    if (pending !== undefined) return pending
    const p = this.findAndJoin(name, deadlineMs).finally(() => { this.joining.delete(name) })
    this.joining.set(name, p)
    return p
  }

  private async findAndJoin (name: string, deadlineMs: number): Promise<Session> {
    const end = this.env.clock.nowMs() + deadlineMs
    let found: Found | null = null
    while (found === null) {
      try {
        found = await this.find(name)
      } catch (err) {
        if (this.stopped || this.env.clock.nowMs() + FIND_RETRY_MS >= end) throw err
        await this.env.clock.sleep(FIND_RETRY_MS)
      }
    }
    const again = this.get(name)
    if (again !== undefined && !again.ended) return again
    this.checkRoom()
    const s = new Session(this.env, found.meta, false)
    s.bitrate = found.bitrate // until the first signed batch says it
    this.add(s)
    // The root first: it knows the shallowest spare slots of the whole tree and redirects there;
    // the spare slots the answering member gave are the fallback.
    s.tree.join([{ nodeId: found.rootId, depth: 0, spare: 1, uptimeS: 0, port: 0, address: '' }, ...found.candidates])
    return s
  }

  private whenAttached (s: Session, deadlineMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = this.env.clock.setTimeout(() => { reject(new CanopyError('TIMEOUT', `could not join stream ${s.name} within ${deadlineMs} ms`)) }, deadlineMs)
      s.tree.onAttached(() => { timer.cancel(); resolve() })
    })
  }

  /** Ask the peers who knows NAME. Rejects STREAM_NOT_FOUND after findMs. */
  find (name: string): Promise<Found> {
    const known = this.known.get(name)
    if (known !== undefined && this.env.clock.nowMs() - known.atMs < KNOWN_MS) return Promise.resolve(known.found)
    const peers = this.pickPeers()
    if (peers.length === 0) return Promise.reject(new CanopyError('STREAM_NOT_FOUND', `no peers to ask for stream ${name}`))
    const id = this.nextFindId++ >>> 0
    return new Promise((resolve, reject) => {
      const timer = this.env.clock.setTimeout(() => {
        this.finds.delete(id)
        reject(new CanopyError('STREAM_NOT_FOUND', `none of ${peers.length} peers knows stream ${name}`))
      }, this.env.settings.findMs)
      const f: FindState = { name, waiting: new Set(), resolve, reject, timer }
      this.finds.set(id, f)
      for (const p of peers) {
        if (this.env.transport.isUp(p.nodeId)) this.sendFind(p.nodeId, id, name)
        else { f.waiting.add(p.nodeId); this.env.transport.connect(p) }
      }
    })
  }

  private pickPeers (): PeerRef[] {
    const t = this.env.transport
    const all = t.peers().filter((p) => p.nodeId !== t.selfId)
    const linked = all.filter((p) => t.isUp(p.nodeId))
    const rest = all.filter((p) => !t.isUp(p.nodeId))
    for (let i = rest.length - 1; i > 0; i--) {
      const j = this.env.random.int(i + 1)
      ;[rest[i], rest[j]] = [rest[j]!, rest[i]!]
    }
    return [...linked, ...rest].slice(0, STREAM_FIND_PEERS_MAX)
  }

  private sendFind (nodeId: string, id: number, name: string): void {
    if (this.env.transport.send(nodeId, encodeFind(id, name), { urgent: true })) this.counters.findsSent++
  }

  // ---- the transport's events -------------------------------------------------------------

  private onFrame (from: string, frame: Buffer): void {
    let m: StreamMessage
    try {
      m = decodeMessage(frame.subarray(FRAME_HEADER_BYTES))
    } catch {
      this.counters.malformed++
      return
    }
    switch (m.type) {
      case 'find': this.onFind(from, m.requestId, m.name); return
      case 'found': this.onFound(m); return
      case 'notFound': return
      default: {
        const s = this.sessions.get(m.streamId)
        if (s === undefined) {
          this.counters.unknownStream++
          if (m.type === 'join') this.env.transport.send(from, encodeRefuse(m.streamId, REFUSE.unknownStream), { urgent: true })
          return
        }
        s.tree.onMessage(from, m, frame)
      }
    }
  }

  private onFind (from: string, requestId: number, name: string): void {
    const s = this.get(name)
    let reply: Buffer
    if (s !== undefined && s.tree.attached && !s.ended) {
      reply = encodeFound(requestId, s.meta.sourceId, s.bitrate, s.meta.bytes, s.tree.spare())
    } else {
      const k = this.known.get(name)
      reply = k !== undefined && this.env.clock.nowMs() - k.atMs < KNOWN_MS
        ? encodeFound(requestId, k.found.rootId, k.found.bitrate, k.found.meta.bytes, [])
        : encodeNotFound(requestId)
    }
    this.counters.findsAnswered++
    this.env.transport.send(from, reply, { urgent: true })
  }

  private onFound (m: Extract<StreamMessage, { type: 'found' }>): void {
    const f = this.finds.get(m.requestId)
    if (f === undefined) return
    let meta: StreamMeta
    try {
      meta = decodeMeta(m.meta)
    } catch {
      this.counters.foundRejected++
      return
    }
    if (meta.name !== f.name || m.rootId !== meta.sourceId) { this.counters.foundRejected++; return }
    this.finds.delete(m.requestId)
    f.timer.cancel()
    const found: Found = { meta, rootId: m.rootId, bitrate: m.bitrate, candidates: m.candidates }
    this.remember(found)
    f.resolve(found)
  }

  private remember (found: Found): void {
    this.known.delete(found.meta.name)
    this.known.set(found.meta.name, { found: { ...found, candidates: [] }, atMs: this.env.clock.nowMs() })
    while (this.known.size > STREAM_KNOWN_MAX) this.known.delete(this.known.keys().next().value!)
  }

  private onUp (nodeId: string): void {
    for (const s of this.sessions.values()) s.tree.onUp(nodeId)
    for (const [id, f] of this.finds) if (f.waiting.delete(nodeId)) this.sendFind(nodeId, id, f.name)
  }

  private onDown (nodeId: string): void {
    for (const s of this.sessions.values()) s.tree.onDown(nodeId)
    for (const f of this.finds.values()) f.waiting.delete(nodeId)
  }

  // ---- bookkeeping -------------------------------------------------------------------------

  private checkRoom (): void {
    if (this.sessions.size >= STREAM_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', `this node already takes part in ${STREAM_COUNT_MAX} streams`)
  }

  private add (s: Session): void {
    this.sessions.set(s.streamId, s)
    this.byName.set(s.name, s.streamId)
    this.remember({ meta: s.meta, rootId: s.meta.sourceId, bitrate: s.bitrate, candidates: [] })
    for (const fn of this.sessionListeners) fn(s)
  }

  private remove (s: Session): void {
    s.close()
    this.sessions.delete(s.streamId)
    if (this.byName.get(s.name) === s.streamId) this.byName.delete(s.name)
    this.users.delete(s.streamId)
    this.idleSince.delete(s.streamId)
  }

  /** Does anyone here still need this session? Local users, children, or (at the source) the pusher. */
  private needed (s: Session): boolean {
    if (s.ended) return s.listeners.size > 0
    return s.isSource || (this.users.get(s.streamId) ?? 0) > 0 || s.tree.children.size > 0
  }

  private tick (): void {
    const now = this.env.clock.nowMs()
    for (const s of [...this.sessions.values()]) {
      s.tree.tick()
      if (this.needed(s)) { this.idleSince.delete(s.streamId); continue }
      const since = this.idleSince.get(s.streamId)
      if (since === undefined) { this.idleSince.set(s.streamId, now); continue }
      if (now - since >= this.env.settings.lingerMs) {
        if (!s.ended) s.tree.leave()
        this.remove(s)
      }
    }
  }
}
