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
import { createMeta, decodeMeta, type StreamMeta } from './meta'
import { createSession, type Session, type SessionEnv } from './session'
import { URGENT, type PeerRef } from './transport'
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

export type Streams = ReturnType<typeof createStreams>

/** The streams of one node on env.transport; `identity` signs the streams pushed here. */
export function createStreams (env: SessionEnv, identity: SourceIdentity) {
  const { clock, transport: t } = env
  const sessions = new Map<string, Session>()
  const counters: StreamsCounters = { malformed: 0 }
  const known = new Map<string, { found: Found, atMs: number }>()
  const finds = new Map<number, FindState>()
  const joining = new Map<string, Promise<Session>>()
  /** Called, synchronously, for every session as it is created (metrics, simulations). */
  const sessionListeners: Array<(s: Session) => void> = []
  let nextFindId = 1
  let timer: Timer | null = null
  let stopped = false

  /** The newest session of that name (an ended one may linger while its players drain). */
  function get (name: string): Session | undefined {
    let found: Session | undefined
    for (const s of sessions.values()) if (s.name === name) found = s
    return found
  }

  /** What we heard of NAME lately (a FOUND, or a session of ours). */
  function knownFound (name: string): Found | undefined {
    const k = known.get(name)
    return k !== undefined && clock.nowMs() - k.atMs < KNOWN_MS ? k.found : undefined
  }

  function joinShared (name: string, deadlineMs: number): Promise<Session> {
    let p = joining.get(name)
    if (p === undefined) {
      p = findAndJoin(name, deadlineMs).finally(() => { joining.delete(name) })
      joining.set(name, p)
    }
    return p
  }

  async function findAndJoin (name: string, deadlineMs: number): Promise<Session> {
    const end = clock.nowMs() + deadlineMs
    let found: Found | null = null
    while (found === null) {
      try {
        found = await find(name)
      } catch (err) {
        if (stopped || clock.nowMs() + FIND_RETRY_MS >= end) throw err
        await clock.sleep(FIND_RETRY_MS)
      }
    }
    const again = get(name)
    if (again !== undefined && !again.ended) return again
    checkRoom()
    const s = add(createSession(env, found.meta, false))
    s.bitrate = found.bitrate // until the first signed batch says it
    // The root first: it knows the shallowest spare slots of the whole tree and redirects there;
    // the spare slots the answering member gave are the fallback.
    s.tree.join([s.tree.root(), ...found.candidates])
    return s
  }

  /** Ask the peers who knows NAME. Rejects STREAM_NOT_FOUND after findMs. */
  function find (name: string): Promise<Found> {
    const k = knownFound(name)
    if (k !== undefined) return Promise.resolve(k)
    // Linked peers first, then the others in random order.
    const all = t.peers().filter((p) => p.nodeId !== t.selfId)
    const rest = all.filter((p) => !t.isUp(p.nodeId))
    for (let i = rest.length - 1; i > 0; i--) {
      const j = env.random.int(i + 1)
      ;[rest[i], rest[j]] = [rest[j]!, rest[i]!]
    }
    const peers: PeerRef[] = [...all.filter((p) => t.isUp(p.nodeId)), ...rest].slice(0, STREAM_FIND_PEERS_MAX)
    if (peers.length === 0) return Promise.reject(new CanopyError('STREAM_NOT_FOUND', `no peers to ask for ${name}`))
    const id = nextFindId++ >>> 0
    return new Promise((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        finds.delete(id)
        reject(new CanopyError('STREAM_NOT_FOUND', `no peer knows ${name}`))
      }, env.settings.findMs)
      const f: FindState = { name, waiting: new Set(), resolve, reject, timer }
      finds.set(id, f)
      for (const p of peers) {
        if (t.isUp(p.nodeId)) sendFind(p.nodeId, id, name)
        else { f.waiting.add(p.nodeId); t.connect(p) }
      }
    })
  }

  const sendFind = (nodeId: string, id: number, name: string): void => { t.send(nodeId, encodeFind(id, name), URGENT) }

  // ---- the transport's events -------------------------------------------------------------

  function onFrame (from: string, frame: Buffer): void {
    let m: StreamMessage
    try {
      m = decodeMessage(frame.subarray(FRAME_HEADER_BYTES))
    } catch {
      counters.malformed++
      return
    }
    if (m.type === 'find') {
      // A member answers with its spare slots; a node that only heard of the stream, with its meta and root.
      const s = get(m.name)
      const k = knownFound(m.name)
      const reply = s !== undefined && s.tree.attached && !s.ended
        ? encodeFound(m.requestId, s.meta.sourceId, s.bitrate, s.meta.bytes, s.tree.spare())
        : k !== undefined ? encodeFound(m.requestId, k.rootId, k.bitrate, k.meta.bytes, []) : encodeNotFound(m.requestId)
      t.send(from, reply, URGENT)
    } else if (m.type === 'found') {
      onFound(m)
    } else if (m.type !== 'notFound') {
      const s = sessions.get(m.streamId)
      if (s !== undefined) s.tree.onMessage(from, m, frame)
      else if (m.type === 'join') t.send(from, encodeRefuse(m.streamId, REFUSE.unknownStream), URGENT)
    }
  }

  function onFound (m: Extract<StreamMessage, { type: 'found' }>): void {
    const f = finds.get(m.requestId)
    if (f === undefined) return
    let meta: StreamMeta
    try {
      meta = decodeMeta(m.meta)
    } catch {
      return
    }
    if (meta.name !== f.name || m.rootId !== meta.sourceId) return
    finds.delete(m.requestId)
    f.timer.cancel()
    const found: Found = { meta, rootId: m.rootId, bitrate: m.bitrate, candidates: m.candidates }
    remember(found)
    f.resolve(found)
  }

  function remember (found: Found): void {
    known.delete(found.meta.name)
    known.set(found.meta.name, { found: { ...found, candidates: [] }, atMs: clock.nowMs() })
    while (known.size > STREAM_KNOWN_MAX) known.delete(known.keys().next().value!)
  }

  // ---- bookkeeping -------------------------------------------------------------------------

  function add (s: Session): Session {
    sessions.set(s.streamId, s)
    remember({ meta: s.meta, rootId: s.meta.sourceId, bitrate: s.bitrate, candidates: [] })
    for (const fn of sessionListeners) fn(s)
    return s
  }

  function remove (s: Session): void {
    s.close()
    sessions.delete(s.streamId)
  }

  function checkRoom (): void {
    if (sessions.size >= STREAM_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', `${STREAM_COUNT_MAX} streams here already`)
  }

  /** Does anyone here still need this session? Local users, children, or (at the source) the pusher. */
  const needed = (s: Session): boolean => s.ended ? s.listeners.size > 0 : s.isSource || s.users > 0 || s.tree.children.size > 0

  function tick (): void {
    const now = clock.nowMs()
    for (const s of [...sessions.values()]) {
      s.tree.tick()
      if (needed(s)) s.idleAt = 0
      else if (s.idleAt === 0) s.idleAt = now
      else if (now - s.idleAt >= env.settings.lingerMs) {
        if (!s.ended) s.tree.leave()
        remove(s)
      }
    }
  }

  t.setHandler({
    up (nodeId) {
      for (const s of sessions.values()) s.tree.onUp(nodeId)
      for (const [id, f] of finds) if (f.waiting.delete(nodeId)) sendFind(nodeId, id, f.name)
    },
    down (nodeId) {
      for (const s of sessions.values()) s.tree.onDown(nodeId)
      for (const f of finds.values()) f.waiting.delete(nodeId)
    },
    frame: onFrame
  })

  return {
    env,
    sessions: sessions as ReadonlyMap<string, Session>,
    counters,
    sessionListeners,
    get,
    find,
    list: (): Session[] => [...sessions.values()],

    start (): void {
      timer = clock.setInterval(tick, env.settings.heartbeatMs)
    },

    stop (): void {
      stopped = true
      timer?.cancel()
      for (const f of finds.values()) { f.timer.cancel(); f.reject(new CanopyError('CLOSED', 'streams stopped')) }
      finds.clear()
      for (const s of sessions.values()) {
        if (s.isSource) s.end()
        else s.tree.leave()
        s.close()
      }
      sessions.clear()
    },

    /** A new stream rooted here (the ingest calls publish/end on it). */
    publish (name: string): Session {
      const old = get(name)
      if (old !== undefined && !old.ended) throw new CanopyError('STREAM_BUSY', `stream ${name} is live here`)
      if (old !== undefined) remove(old)
      checkRoom()
      const meta = createMeta({ name, sourceKey: identity.publicKey, privateKey: identity.privateKey, nonce: env.random.bytes(8) })
      return add(createSession(env, meta, true, identity.privateKey))
    },

    /** Find and join a stream, or take the session already here; the caller must release() it. */
    async subscribe (name: string, deadlineMs: number): Promise<Session> {
      const existing = get(name)
      const s = existing !== undefined && !existing.ended ? existing : await joinShared(name, deadlineMs)
      s.users++
      s.idleAt = 0
      if (!s.tree.attached) {
        await new Promise<void>((resolve, reject) => {
          const timer = clock.setTimeout(() => { reject(new CanopyError('TIMEOUT', `no join to ${s.name} in ${deadlineMs} ms`)) }, deadlineMs)
          s.tree.onAttached(() => { timer.cancel(); resolve() })
        })
      }
      return s
    },

    release (s: Session): void { s.users = Math.max(0, s.users - 1) }
  }
}
