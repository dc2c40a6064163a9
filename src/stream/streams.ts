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
import type { Clock, Timer } from '../hal'
import { FRAME_HEADER_BYTES } from '../protocol/link'
import { STREAM_COUNT_MAX, STREAM_FIND_PEERS_MAX, STREAM_KNOWN_MAX } from '../limits'
import { createMeta, decodeMeta, type StreamMeta } from './meta'
import { Session, type SessionEnv } from './session'
import type { PeerRef, StreamTransport } from './transport'
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
  /** Stream-channel frames that did not decode. */
  malformed: number
}

/** A name is remembered (meta + root) this long after a FOUND or a membership. */
const KNOWN_MS = 60_000
const FIND_RETRY_MS = 250

export class Streams {
  readonly sessions = new Map<string, Session>()
  readonly counters: StreamsCounters = { malformed: 0 }
  readonly #known = new Map<string, { found: Found, atMs: number }>()
  readonly #finds = new Map<number, FindState>()
  readonly #joining = new Map<string, Promise<Session>>()
  /** Called, synchronously, for every session as it is created (metrics, simulations). */
  readonly sessionListeners: Array<(s: Session) => void> = []
  #nextFindId = 1
  #timer: Timer | null = null
  #stopped = false

  readonly #identity: SourceIdentity
  readonly #clock: Clock
  readonly #t: StreamTransport

  constructor (readonly env: SessionEnv, identity: SourceIdentity) {
    this.#identity = identity
    this.#clock = env.clock
    this.#t = env.transport
    env.transport.setHandler({
      up: (id) => { this.#onUp(id) },
      down: (id) => { this.#onDown(id) },
      frame: (id, frame) => { this.#onFrame(id, frame) }
    })
  }

  start (): void {
    this.#timer = this.#clock.setInterval(() => { this.#tick() }, this.env.settings.heartbeatMs)
  }

  stop (): void {
    this.#stopped = true
    this.#timer?.cancel()
    for (const f of this.#finds.values()) { f.timer.cancel(); f.reject(new CanopyError('CLOSED', 'streams stopped')) }
    this.#finds.clear()
    for (const s of this.sessions.values()) {
      if (s.isSource) s.end()
      else s.tree.leave()
      s.close()
    }
    this.sessions.clear()
  }

  /** The newest session of that name (an ended one may linger while its players drain). */
  get (name: string): Session | undefined {
    let found: Session | undefined
    for (const s of this.sessions.values()) if (s.name === name) found = s
    return found
  }

  list (): Session[] { return [...this.sessions.values()] }

  // ---- source -------------------------------------------------------------------------

  /** A new stream rooted here (the ingest calls publish/end on it). */
  publish (name: string): Session {
    const old = this.get(name)
    if (old !== undefined && !old.ended) throw new CanopyError('STREAM_BUSY', `stream ${name} is live here`)
    if (old !== undefined) this.#remove(old)
    this.#checkRoom()
    const meta = createMeta({ name, sourceKey: this.#identity.publicKey, privateKey: this.#identity.privateKey, nonce: this.env.random.bytes(8) })
    const s = new Session(this.env, meta, true, this.#identity.privateKey)
    this.#add(s)
    return s
  }

  // ---- members ---------------------------------------------------------------------------

  /** Find and join a stream, or take the session already here; the caller must release() it. */
  async subscribe (name: string, deadlineMs: number): Promise<Session> {
    const existing = this.get(name)
    const s = existing !== undefined && !existing.ended ? existing : await this.#joinShared(name, deadlineMs)
    s.users++
    s.idleSinceMs = 0
    if (!s.tree.attached) await this.#whenAttached(s, deadlineMs)
    return s
  }

  release (s: Session): void { s.users = Math.max(0, s.users - 1) }

  #joinShared (name: string, deadlineMs: number): Promise<Session> {
    const pending = this.#joining.get(name)
    if (pending !== undefined) return pending
    const p = this.#findAndJoin(name, deadlineMs).finally(() => { this.#joining.delete(name) })
    this.#joining.set(name, p)
    return p
  }

  async #findAndJoin (name: string, deadlineMs: number): Promise<Session> {
    const end = this.#clock.nowMs() + deadlineMs
    let found: Found | null = null
    while (found === null) {
      try {
        found = await this.find(name)
      } catch (err) {
        if (this.#stopped || this.#clock.nowMs() + FIND_RETRY_MS >= end) throw err
        await this.#clock.sleep(FIND_RETRY_MS)
      }
    }
    const again = this.get(name)
    if (again !== undefined && !again.ended) return again
    this.#checkRoom()
    const s = new Session(this.env, found.meta, false)
    s.bitrate = found.bitrate // until the first signed batch says it
    this.#add(s)
    // The root first: it knows the shallowest spare slots of the whole tree and redirects there;
    // the spare slots the answering member gave are the fallback.
    s.tree.join([s.tree.root(), ...found.candidates])
    return s
  }

  #whenAttached (s: Session, deadlineMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => { reject(new CanopyError('TIMEOUT', `no join to ${s.name} in ${deadlineMs} ms`)) }, deadlineMs)
      s.tree.onAttached(() => { timer.cancel(); resolve() })
    })
  }

  /** Ask the peers who knows NAME. Rejects STREAM_NOT_FOUND after findMs. */
  find (name: string): Promise<Found> {
    const known = this.#known.get(name)
    if (known !== undefined && this.#clock.nowMs() - known.atMs < KNOWN_MS) return Promise.resolve(known.found)
    const peers = this.#pickPeers()
    if (peers.length === 0) return Promise.reject(new CanopyError('STREAM_NOT_FOUND', `no peers to ask for ${name}`))
    const id = this.#nextFindId++ >>> 0
    return new Promise((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        this.#finds.delete(id)
        reject(new CanopyError('STREAM_NOT_FOUND', `no peer knows ${name}`))
      }, this.env.settings.findMs)
      const f: FindState = { name, waiting: new Set(), resolve, reject, timer }
      this.#finds.set(id, f)
      for (const p of peers) {
        if (this.#t.isUp(p.nodeId)) this.#sendFind(p.nodeId, id, name)
        else { f.waiting.add(p.nodeId); this.#t.connect(p) }
      }
    })
  }

  #pickPeers (): PeerRef[] {
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

  #sendFind (nodeId: string, id: number, name: string): void {
    this.#t.send(nodeId, encodeFind(id, name), { urgent: true })
  }

  // ---- the transport's events -------------------------------------------------------------

  #onFrame (from: string, frame: Buffer): void {
    let m: StreamMessage
    try {
      m = decodeMessage(frame.subarray(FRAME_HEADER_BYTES))
    } catch {
      this.counters.malformed++
      return
    }
    switch (m.type) {
      case 'find': this.#onFind(from, m.requestId, m.name); return
      case 'found': this.#onFound(m); return
      case 'notFound': return
      default: {
        const s = this.sessions.get(m.streamId)
        if (s === undefined) {
          if (m.type === 'join') this.#t.send(from, encodeRefuse(m.streamId, REFUSE.unknownStream), { urgent: true })
          return
        }
        s.tree.onMessage(from, m, frame)
      }
    }
  }

  #onFind (from: string, requestId: number, name: string): void {
    const s = this.get(name)
    let reply: Buffer
    if (s !== undefined && s.tree.attached && !s.ended) {
      reply = encodeFound(requestId, s.meta.sourceId, s.bitrate, s.meta.bytes, s.tree.spare())
    } else {
      const k = this.#known.get(name)
      reply = k !== undefined && this.#clock.nowMs() - k.atMs < KNOWN_MS
        ? encodeFound(requestId, k.found.rootId, k.found.bitrate, k.found.meta.bytes, [])
        : encodeNotFound(requestId)
    }
    this.#t.send(from, reply, { urgent: true })
  }

  #onFound (m: Extract<StreamMessage, { type: 'found' }>): void {
    const f = this.#finds.get(m.requestId)
    if (f === undefined) return
    let meta: StreamMeta
    try {
      meta = decodeMeta(m.meta)
    } catch {
      return
    }
    if (meta.name !== f.name || m.rootId !== meta.sourceId) return
    this.#finds.delete(m.requestId)
    f.timer.cancel()
    const found: Found = { meta, rootId: m.rootId, bitrate: m.bitrate, candidates: m.candidates }
    this.#remember(found)
    f.resolve(found)
  }

  #remember (found: Found): void {
    this.#known.delete(found.meta.name)
    this.#known.set(found.meta.name, { found: { ...found, candidates: [] }, atMs: this.#clock.nowMs() })
    while (this.#known.size > STREAM_KNOWN_MAX) this.#known.delete(this.#known.keys().next().value!)
  }

  #onUp (nodeId: string): void {
    for (const s of this.sessions.values()) s.tree.onUp(nodeId)
    for (const [id, f] of this.#finds) if (f.waiting.delete(nodeId)) this.#sendFind(nodeId, id, f.name)
  }

  #onDown (nodeId: string): void {
    for (const s of this.sessions.values()) s.tree.onDown(nodeId)
    for (const f of this.#finds.values()) f.waiting.delete(nodeId)
  }

  // ---- bookkeeping -------------------------------------------------------------------------

  #checkRoom (): void {
    if (this.sessions.size >= STREAM_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', `${STREAM_COUNT_MAX} streams here already`)
  }

  #add (s: Session): void {
    this.sessions.set(s.streamId, s)
    this.#remember({ meta: s.meta, rootId: s.meta.sourceId, bitrate: s.bitrate, candidates: [] })
    for (const fn of this.sessionListeners) fn(s)
  }

  #remove (s: Session): void {
    s.close()
    this.sessions.delete(s.streamId)
  }

  /** Does anyone here still need this session? Local users, children, or (at the source) the pusher. */
  #needed (s: Session): boolean {
    if (s.ended) return s.listeners.size > 0
    return s.isSource || s.users > 0 || s.tree.children.size > 0
  }

  #tick (): void {
    const now = this.#clock.nowMs()
    for (const s of [...this.sessions.values()]) {
      s.tree.tick()
      if (this.#needed(s)) { s.idleSinceMs = 0; continue }
      if (s.idleSinceMs === 0) { s.idleSinceMs = now; continue }
      if (now - s.idleSinceMs >= this.env.settings.lingerMs) {
        if (!s.ended) s.tree.leave()
        this.#remove(s)
      }
    }
  }
}
