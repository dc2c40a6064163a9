// One stream on one node, its data plane: chunks in (published by the
// source, or received from the parent and verified against the source's
// signed batches), the ring buffer, chunks out (to every child, unchanged,
// with a playout deadline), gap fills from the ring, and local listeners
// (HTTP players). The tree's control plane (parent, children, joins,
// heartbeats) is tree.ts; it calls in here and this calls back through the
// `tree` field.

import type { KeyObject } from 'node:crypto'
import { assert } from '../errors'
import type { Clock, Random } from '../hal'
import { STREAM_PENDING_CHUNKS_MAX, STREAM_RING_CHUNKS_MAX, STREAM_SIG_BATCHES_MAX } from '../limits'
import type { Logger } from '../log'
import { FRAME_HEADER_BYTES, type FramePool } from '../protocol/link'
import { BATCH_DOMAIN, END_DOMAIN, createBatchStore, createPendingChunks, type StreamCrypto } from './batches'
import type { StreamMeta } from './meta'
import { createChunkRing, type ChunkRing } from './ring'
import type { StreamSettings } from './settings'
import { createBatchSigner } from './signer'
import { URGENT, type StreamTransport } from './transport'
import { createTree, type Tree } from './tree'
import { decodeMessage, encodeChunk, encodeEnd, endBody, type StreamMessage } from './wire'

const CHUNK_RATE_WINDOW_MS = 2_000
const CHUNK_RATE_SAMPLES_MAX = 512

export interface SessionEnv {
  selfId: string
  clock: Clock
  random: Random
  transport: StreamTransport
  settings: StreamSettings
  crypto: StreamCrypto
  /** Seconds this node has been up (placement prefers old nodes inside the tree). */
  uptimeS: () => number
  log: Logger
  /** Where chunk frames live (the link host's pool); absent: plain Buffers. */
  pool?: FramePool
}

/** A local consumer of verified chunks, in arrival order (a player puts them in seq order). */
export interface ChunkListener {
  chunk (seq: number): void
  end (): void
}

export interface SessionCounters {
  /** Verified chunks taken into the ring (published ones, at the source). */
  received: number
  /** Chunk frames queued to children. */
  forwarded: number
  /** Chunks that filled a hole (arrived after a newer one). */
  repaired: number
  /** Chunks not sent to a child because past their playout deadline or its queue was full. */
  droppedLate: number
  /** Chunks given up on: never arrived before their deadline. */
  lost: number
  duplicates: number
  /** Chunks or batches that failed verification. */
  polluted: number
  /** Frames from a peer that is not our parent. */
  stray: number
  batches: number
}

/** One stream on this node (see the top of this file). Made by createSession. */
export interface Session {
  readonly env: SessionEnv
  readonly meta: StreamMeta
  readonly isSource: boolean
  readonly streamId: string
  readonly name: string
  readonly counters: SessionCounters
  readonly ring: ChunkRing
  readonly listeners: Set<ChunkListener>
  readonly tree: Tree
  /** Next seq not yet held contiguously (-1: nothing yet); newest seq held. */
  readonly nextSeq: number
  readonly newestSeq: number
  /** Bytes/s, from the latest verified batch (or the source's own estimate, or what a FOUND said until then). */
  bitrate: number
  readonly ended: boolean
  readonly endSeq: number
  /** Local users (players) holding this session (Streams.subscribe/release); monotonic ms since nobody needs it (0: needed). */
  users: number
  idleAt: number
  /** The source's own bitrate estimate (0 elsewhere). */
  readonly sourceBitrate: number
  /** Chunks per second of the live stream, from the arrival of the newest ones (0 until known). */
  readonly chunkRate: number
  /**
   * Source only: one chunk of whole TS packets, as cut by the chunker.
   * mediaBytes is what the chunk stands for in the bitrate estimate (a
   * simulation sends small payloads that stand for whole chunks).
   */
  publish (packets: Uint8Array, flags: number, mediaBytes?: number): number
  /** Source only: the input paused (one ingest write is chunked): sign the batch now. */
  pause (): void
  /** Source only: the pusher is done. Sign what is left, tell the tree, let players drain. */
  end (): void
  /** A stream message from the current parent that belongs to the data plane. */
  onData (m: StreamMessage, frame: Buffer): void
  sendBatches (nodeId: string, from: number, to: number): void
  fill (nodeId: string, from: number, to: number, maxChunks: number): number
  startFor (fromSeq: number | null): number
  acceptStart (startSeq: number): void
  checkHoles (nowMs: number): { from: number, count: number } | null
  close (): void
}

export function createSession (env: SessionEnv, meta: StreamMeta, isSource: boolean, sourceKey: KeyObject | null = null): Session {
  assert(!isSource || sourceKey !== null, 'source key')
  const { crypto, pool, clock, settings } = env
  const counters: SessionCounters = { received: 0, forwarded: 0, repaired: 0, droppedLate: 0, lost: 0, duplicates: 0, polluted: 0, stray: 0, batches: 0 }
  const ring = createChunkRing(settings.ringBytes, STREAM_RING_CHUNKS_MAX, pool)
  const batches = createBatchStore(STREAM_SIG_BATCHES_MAX)
  const pending = createPendingChunks(STREAM_PENDING_CHUNKS_MAX, pool)
  const listeners = new Set<ChunkListener>()
  const streamId = meta.streamId
  let nextSeq = -1
  let newestSeq = -1
  let newestArrivalMs = 0
  let ended = false
  let endSeq = -1
  /** Monotonic ms of the newest chunks' arrivals (the chunk rate). */
  const arrivals: number[] = []
  let publishSeq = 0
  let holeSinceMs = 0

  const signer = isSource ? createBatchSigner(streamId, sourceKey!, clock, crypto, onOwnBatch) : null

  function onOwnBatch (frame: Buffer): void {
    const m = decodeMessage(frame.subarray(FRAME_HEADER_BYTES))
    if (m.type === 'sig') keepBatch(m, frame)
  }

  /** A verified SIG frame (or our own): kept for the chunks it vouches for, its bitrate taken, sent on to every child. */
  function keepBatch (m: Extract<StreamMessage, { type: 'sig' }>, frame: Buffer): void {
    batches.add(m.firstSeq, m.count, frame, m.hashesAt)
    counters.batches++
    session.bitrate = m.bitrate
    tree.toChildren(frame, URGENT)
  }

  // ---- receiving (from the parent) ------------------------------------------------------

  function onChunk (seq: number, flags: number, frame: Buffer): void {
    if (ended && seq > endSeq) return
    if (ring.has(seq) || pending.has(seq) || (ring.size > 0 && seq < ring.floor)) {
      counters.duplicates++
      return
    }
    const expected = batches.hashOf(seq)
    if (expected === undefined) pending.put(seq, frame, flags)
    else if (!crypto.hashChunk(frame).equals(expected)) polluted(`chunk ${seq}`)
    else deliver(seq, frame, flags)
  }

  function onSig (m: Extract<StreamMessage, { type: 'sig' }>, frame: Buffer): void {
    const { firstSeq, count } = m
    if (batches.has(firstSeq)) { counters.duplicates++; return }
    if (!crypto.verify(meta.key, BATCH_DOMAIN, frame, m.signedEnd)) return polluted(`batch ${firstSeq}`)
    keepBatch(m, frame)
    for (let s = firstSeq; s < firstSeq + count; s++) {
      const p = pending.take(s)
      if (p === undefined) continue
      const ok = crypto.hashChunk(p.frame).equals(batches.hashOf(s)!)
      if (ok) deliver(s, p.frame, p.flags)
      pool?.release(p.frame) // the reference pending held
      if (!ok) return polluted(`chunk ${s}`)
    }
  }

  function onEnd (frame: Buffer, lastSeq: number): void {
    ended = true
    endSeq = lastSeq
    tree.toChildren(frame, {})
    endListeners()
  }

  /** Tell every local listener the stream ended (they may unsubscribe while told). */
  const endListeners = (): void => { for (const l of [...listeners]) l.end() }

  /** `what` failed verification: its sender, our parent, is replaced. */
  function polluted (what: string): void {
    counters.polluted++
    pending.clear()
    tree.parentPolluted(`${what} does not verify`)
  }

  // ---- the verified chunk ---------------------------------------------------------------

  function deliver (seq: number, frame: Buffer, flags: number): void {
    const now = clock.nowMs()
    if (!ring.put(seq, frame, flags, now)) { counters.duplicates++; return }
    counters.received++
    if (seq < newestSeq) counters.repaired++
    if (seq > newestSeq) {
      newestSeq = seq
      newestArrivalMs = now
      arrivals.push(now)
      while (arrivals.length > 2 && now - arrivals[0]! > CHUNK_RATE_WINDOW_MS) arrivals.shift()
      if (arrivals.length > CHUNK_RATE_SAMPLES_MAX) arrivals.shift()
    }
    if (nextSeq === -1) nextSeq = seq
    advance()
    tree.forward(seq, frame, deadlineFor(seq, now))
    for (const l of listeners) l.chunk(seq)
  }

  /** Move nextSeq over what is held contiguously. */
  function advance (): void {
    if (nextSeq < ring.floor) nextSeq = ring.floor
    while (nextSeq <= newestSeq && ring.has(nextSeq)) nextSeq++
  }

  function chunkRate (): number {
    const n = arrivals.length
    const span = n < 2 ? 0 : arrivals[n - 1]! - arrivals[0]!
    return span <= 0 ? 0 : (n - 1) * 1000 / span
  }

  /**
   * Monotonic ms after which chunk seq (received here at recvMs) is useless
   * to a child: playoutDelayMs after it left the source, less what it took to
   * get here. A chunk k chunks older than the newest left the source about
   * k chunk intervals before it, however late it arrived (a repair), so its
   * deadline is counted from the newest chunk's arrival, not its own.
   */
  function deadlineFor (seq: number, recvMs: number): number {
    const budget = Math.max(100, settings.playoutDelayMs - tree.latencyMs)
    const rate = chunkRate()
    const deadline = recvMs + budget
    return rate > 0 && seq < newestSeq ? Math.min(deadline, newestArrivalMs - (newestSeq - seq) * 1000 / rate + budget) : deadline
  }

  const session: Session = {
    env,
    meta,
    isSource,
    streamId,
    name: meta.name,
    counters,
    ring,
    listeners,
    get tree () { return tree },
    get nextSeq () { return nextSeq },
    get newestSeq () { return newestSeq },
    bitrate: 0,
    get ended () { return ended },
    get endSeq () { return endSeq },
    users: 0,
    idleAt: 0,
    get sourceBitrate () { return signer?.bitrate ?? 0 },
    get chunkRate () { return chunkRate() },

    publish (packets, flags, mediaBytes = packets.length) {
      assert(signer !== null && !ended, 'live source')
      const seq = publishSeq++
      const frame = encodeChunk(streamId, seq, flags, packets, pool)
      signer.add(seq, crypto.hashChunk(frame), mediaBytes)
      deliver(seq, frame, flags)
      pool?.release(frame) // the ring and the links hold their own references
      return seq
    },

    pause () { signer?.pause() },

    end () {
      if (signer === null || ended) return
      signer.flush()
      const last = publishSeq - 1
      const body = endBody(streamId, Math.max(0, last))
      onEnd(encodeEnd(body, crypto.sign(sourceKey!, END_DOMAIN, body)), last)
    },

    onData (m, frame) {
      if (m.type === 'chunk') onChunk(m.seq, m.flags, frame)
      else if (m.type === 'sig') onSig(m, frame)
      else if (m.type === 'end' && !ended) {
        if (!crypto.verify(meta.key, END_DOMAIN, frame, m.signedEnd)) polluted('end')
        else onEnd(frame, m.lastSeq)
      }
    },

    /** The signature batches that cover [from, to], to one child (before the chunks they vouch for). */
    sendBatches (nodeId, from, to) {
      const lo = Math.max(from, ring.floor)
      const hi = Math.min(to, newestSeq)
      if (lo <= hi) for (const b of batches.covering(lo, hi)) env.transport.send(nodeId, b, URGENT)
    },

    /**
     * Queue held chunks from `from` up to `to` to one child, at most maxChunks
     * of them; chunks past their playout deadline are skipped. Returns where to
     * go on next time.
     */
    fill (nodeId, from, to, maxChunks) {
      let s = Math.max(from, ring.floor)
      const hi = Math.min(to, newestSeq)
      const now = clock.nowMs()
      let sent = 0
      for (; s <= hi && sent < maxChunks; s++) {
        const f = ring.get(s)
        if (f === undefined) continue
        const deadline = deadlineFor(s, ring.receivedAt(s))
        if (deadline < now) counters.droppedLate++
        else if (tree.sendChunk(nodeId, f, deadline)) sent++
        else break
      }
      return s
    },

    /** The seq a new child (or a player) starts at: fromSeq, or the newest start point. */
    startFor (fromSeq) {
      return ring.size === 0 || (fromSeq !== null && fromSeq > newestSeq) ? newestSeq + 1 : fromSeq === null ? ring.startPoint() : Math.max(fromSeq, ring.oldest)
    },

    /** The new parent starts at startSeq: what we lack below it is lost. */
    acceptStart (startSeq) {
      if (nextSeq === -1) nextSeq = startSeq
      else if (startSeq > nextSeq) {
        for (let s = nextSeq; s < startSeq; s++) if (!ring.has(s)) counters.lost++
        nextSeq = startSeq
        advance()
      }
    },

    /** Periodic: ask the parent again for a hole; give it up when it can no longer be played in time. */
    checkHoles (nowMs) {
      if (isSource || nextSeq === -1 || nextSeq > newestSeq) { holeSinceMs = 0; return null }
      if (holeSinceMs === 0) holeSinceMs = nowMs
      if (nowMs - holeSinceMs >= settings.playoutDelayMs) {
        while (nextSeq <= newestSeq && !ring.has(nextSeq)) { nextSeq++; counters.lost++ }
        advance()
        holeSinceMs = 0
        return null
      }
      let end = nextSeq
      while (end < newestSeq && !ring.has(end + 1)) end++
      return { from: nextSeq, count: end - nextSeq + 1 }
    },

    close () {
      signer?.close()
      tree.close()
      endListeners()
      listeners.clear()
      pending.clear()
      ring.clear()
    }
  }
  const tree: Tree = createTree(session)
  return session
}
