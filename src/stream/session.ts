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
import { BATCH_DOMAIN, BatchStore, END_DOMAIN, PendingChunks, type StreamCrypto } from './batches'
import type { StreamMeta } from './meta'
import { ChunkRing } from './ring'
import type { StreamSettings } from './settings'
import { BatchSigner } from './signer'
import type { StreamTransport } from './transport'
import { Tree } from './tree'
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

export class Session {
  readonly counters: SessionCounters = { received: 0, forwarded: 0, repaired: 0, droppedLate: 0, lost: 0, duplicates: 0, polluted: 0, stray: 0, batches: 0 }
  readonly ring: ChunkRing
  readonly batches = new BatchStore(STREAM_SIG_BATCHES_MAX)
  readonly pending: PendingChunks
  readonly listeners = new Set<ChunkListener>()
  readonly tree: Tree
  readonly createdMs: number
  /** Next seq not yet held contiguously (-1: nothing yet); newest seq held. */
  nextSeq = -1
  newestSeq = -1
  /** Monotonic ms the newest chunk arrived. */
  newestArrivalMs = 0
  /** Bytes/s, from the latest verified batch (or the source's own estimate). */
  bitrate = 0
  ended = false
  endSeq = -1
  private signer: BatchSigner | null = null
  /** Monotonic ms of the newest chunks' arrivals (the chunk rate). */
  private readonly arrivals: number[] = []
  private publishSeq = 0
  private holeSinceMs = 0

  constructor (readonly env: SessionEnv, readonly meta: StreamMeta, readonly isSource: boolean, private readonly sourceKey: KeyObject | null = null) {
    assert(!isSource || sourceKey !== null, 'a source session holds the private key')
    this.ring = new ChunkRing(env.settings.ringBytes, STREAM_RING_CHUNKS_MAX, env.pool)
    this.pending = new PendingChunks(STREAM_PENDING_CHUNKS_MAX, env.pool)
    this.createdMs = env.clock.nowMs()
    this.tree = new Tree(this)
    if (isSource) {
      this.signer = new BatchSigner(meta.streamId, sourceKey!, env.clock, env.crypto, (frame, bitrate) => { this.onOwnBatch(frame, bitrate) })
    }
  }

  get streamId (): string { return this.meta.streamId }
  get name (): string { return this.meta.name }

  // ---- source ------------------------------------------------------------------------

  /**
   * Source only: one chunk of whole TS packets, as cut by the chunker.
   * mediaBytes is what the chunk stands for in the bitrate estimate (a
   * simulation sends small payloads that stand for whole chunks).
   */
  publish (packets: Uint8Array, flags: number, mediaBytes = packets.length): number {
    assert(this.isSource && this.signer !== null && !this.ended, 'publish on a live source session')
    const seq = this.publishSeq++
    const frame = encodeChunk(this.streamId, seq, flags, packets, this.env.pool)
    this.signer.add(seq, this.env.crypto.hashChunk(frame), mediaBytes)
    this.deliver(seq, frame, flags)
    this.env.pool?.release(frame) // the ring and the links hold their own references
    return seq
  }

  /** Source only: the input paused (one ingest write is chunked): sign the batch now. */
  pause (): void { this.signer?.pause() }

  /** Source only: the pusher is done. Sign what is left, tell the tree, let players drain. */
  end (): void {
    if (!this.isSource || this.ended) return
    this.signer!.flush()
    const last = this.publishSeq - 1
    const body = endBody(this.streamId, last >= 0 ? last : 0)
    this.onEnd(encodeEnd(body, this.env.crypto.sign(this.sourceKey!, END_DOMAIN, body)), last)
  }

  get sourceBitrate (): number { return this.signer?.bitrate ?? 0 }

  private onOwnBatch (frame: Buffer, bitrate: number): void {
    const m = decodeMessage(frame.subarray(FRAME_HEADER_BYTES))
    if (m.type !== 'sig') return
    this.bitrate = bitrate
    this.batches.add(m.firstSeq, m.count, frame, m.hashesAt)
    this.counters.batches++
    this.tree.toChildren(frame, { urgent: true })
  }

  // ---- receiving (from the parent) ------------------------------------------------------

  /** A stream message from the current parent that belongs to the data plane. */
  onData (m: StreamMessage, frame: Buffer): void {
    if (m.type === 'chunk') this.onChunk(m.seq, m.flags, frame)
    else if (m.type === 'sig') this.onSig(m.firstSeq, m.count, m.bitrate, m.hashesAt, m.signedEnd, frame)
    else if (m.type === 'end') this.onSignedEnd(m.lastSeq, m.signedEnd, frame)
  }

  private onChunk (seq: number, flags: number, frame: Buffer): void {
    if (this.ended && seq > this.endSeq) return
    if (this.ring.has(seq) || this.pending.has(seq) || (this.ring.size > 0 && seq < this.ring.floor)) {
      this.counters.duplicates++
      return
    }
    const expected = this.batches.hashOf(seq)
    if (expected === undefined) {
      this.pending.put(seq, frame, flags)
      return
    }
    if (!this.env.crypto.hashChunk(frame).equals(expected)) {
      this.polluted(`chunk ${seq} does not match its signed hash`)
      return
    }
    this.deliver(seq, frame, flags)
  }

  private onSig (firstSeq: number, count: number, bitrate: number, hashesAt: number, signedEnd: number, frame: Buffer): void {
    if (this.batches.has(firstSeq)) { this.counters.duplicates++; return }
    if (!this.env.crypto.verify(this.meta.key, BATCH_DOMAIN, frame, signedEnd)) {
      this.polluted(`signature batch at ${firstSeq} does not verify`)
      return
    }
    this.batches.add(firstSeq, count, frame, hashesAt)
    this.counters.batches++
    this.bitrate = bitrate
    this.tree.toChildren(frame, { urgent: true })
    for (let s = firstSeq; s < firstSeq + count; s++) {
      const p = this.pending.take(s)
      if (p === undefined) continue
      const ok = this.env.crypto.hashChunk(p.frame).equals(this.batches.hashOf(s)!)
      if (ok) this.deliver(s, p.frame, p.flags)
      this.env.pool?.release(p.frame) // the reference pending held
      if (!ok) {
        this.polluted(`chunk ${s} does not match its signed hash`)
        return
      }
    }
  }

  private onSignedEnd (lastSeq: number, signedEnd: number, frame: Buffer): void {
    if (this.ended) return
    if (!this.env.crypto.verify(this.meta.key, END_DOMAIN, frame, signedEnd)) {
      this.polluted('end of stream does not verify')
      return
    }
    this.onEnd(frame, lastSeq)
  }

  private onEnd (frame: Buffer, lastSeq: number): void {
    this.ended = true
    this.endSeq = lastSeq
    this.tree.toChildren(frame, {})
    for (const l of [...this.listeners]) l.end()
  }

  private polluted (why: string): void {
    this.counters.polluted++
    this.pending.clear()
    this.tree.parentPolluted(why)
  }

  // ---- the verified chunk ---------------------------------------------------------------

  private deliver (seq: number, frame: Buffer, flags: number): void {
    const now = this.env.clock.nowMs()
    if (!this.ring.put(seq, frame, flags, now)) { this.counters.duplicates++; return }
    this.counters.received++
    if (seq < this.newestSeq) this.counters.repaired++
    if (seq > this.newestSeq) { this.newestSeq = seq; this.newestArrivalMs = now; this.noteArrival(now) }
    if (this.nextSeq === -1) this.nextSeq = seq
    this.advance()
    this.tree.forward(seq, frame, this.deadlineFor(seq, now))
    for (const l of this.listeners) l.chunk(seq)
  }

  /** Move nextSeq over what is held contiguously. */
  private advance (): void {
    if (this.nextSeq < this.ring.floor) this.nextSeq = this.ring.floor
    while (this.nextSeq <= this.newestSeq && this.ring.has(this.nextSeq)) this.nextSeq++
  }

  /**
   * Monotonic ms after which chunk seq (received here at recvMs) is useless
   * to a child: playoutDelayMs after it left the source, less what it took to
   * get here. A chunk k chunks older than the newest left the source about
   * k chunk intervals before it, however late it arrived (a repair), so its
   * deadline is counted from the newest chunk's arrival, not its own.
   */
  deadlineFor (seq: number, recvMs: number): number {
    const budget = Math.max(100, this.env.settings.playoutDelayMs - this.tree.latencyMs)
    let deadline = recvMs + budget
    const rate = this.chunkRate
    if (rate > 0 && seq < this.newestSeq) deadline = Math.min(deadline, this.newestArrivalMs - (this.newestSeq - seq) * 1000 / rate + budget)
    return deadline
  }

  /** The signature batches that cover [from, to], to one child (before the chunks they vouch for). */
  sendBatches (nodeId: string, from: number, to: number): void {
    const lo = Math.max(from, this.ring.floor)
    const hi = Math.min(to, this.newestSeq)
    if (lo > hi) return
    for (const b of this.batches.covering(lo, hi)) this.env.transport.send(nodeId, b, { urgent: true })
  }

  /**
   * Queue held chunks from `from` up to `to` to one child, at most maxChunks
   * of them; chunks past their playout deadline are skipped. Returns where to
   * go on next time.
   */
  fill (nodeId: string, from: number, to: number, maxChunks: number): number {
    let s = Math.max(from, this.ring.floor)
    const hi = Math.min(to, this.newestSeq)
    const now = this.env.clock.nowMs()
    let sent = 0
    for (; s <= hi && sent < maxChunks; s++) {
      const f = this.ring.get(s)
      if (f === undefined) continue
      const deadline = this.deadlineFor(s, this.ring.receivedAt(s))
      if (deadline < now) { this.counters.droppedLate++; continue }
      if (!this.tree.sendChunk(nodeId, f, deadline)) break
      sent++
    }
    return s
  }

  /** Chunks per second of the live stream, from the arrival of the newest ones (0 until known). */
  get chunkRate (): number {
    const n = this.arrivals.length
    if (n < 2) return 0
    const span = this.arrivals[n - 1]! - this.arrivals[0]!
    return span <= 0 ? 0 : (n - 1) * 1000 / span
  }

  private noteArrival (now: number): void {
    this.arrivals.push(now)
    while (this.arrivals.length > 2 && now - this.arrivals[0]! > CHUNK_RATE_WINDOW_MS) this.arrivals.shift()
    if (this.arrivals.length > CHUNK_RATE_SAMPLES_MAX) this.arrivals.shift()
  }

  /** The seq a new child (or a player) starts at: fromSeq, or the newest start point. */
  startFor (fromSeq: number | null): number {
    if (this.ring.size === 0) return this.newestSeq + 1
    if (fromSeq === null) return this.ring.startPoint()
    if (fromSeq > this.newestSeq) return this.newestSeq + 1
    return Math.max(fromSeq, this.ring.oldest)
  }

  /** The new parent starts at startSeq: what we lack below it is lost. */
  acceptStart (startSeq: number): void {
    if (this.nextSeq === -1) { this.nextSeq = startSeq; return }
    if (startSeq > this.nextSeq) {
      for (let s = this.nextSeq; s < startSeq; s++) if (!this.ring.has(s)) this.counters.lost++
      this.nextSeq = startSeq
      this.advance()
    }
  }

  /** Periodic: ask the parent again for a hole; give it up when it can no longer be played in time. */
  checkHoles (nowMs: number): { from: number, count: number } | null {
    if (this.isSource || this.nextSeq === -1 || this.nextSeq > this.newestSeq) { this.holeSinceMs = 0; return null }
    if (this.holeSinceMs === 0) this.holeSinceMs = nowMs
    if (nowMs - this.holeSinceMs >= this.env.settings.playoutDelayMs) {
      let s = this.nextSeq
      while (s <= this.newestSeq && !this.ring.has(s)) { s++; this.counters.lost++ }
      this.nextSeq = s
      this.advance()
      this.holeSinceMs = 0
      return null
    }
    let end = this.nextSeq
    while (end < this.newestSeq && !this.ring.has(end + 1)) end++
    return { from: this.nextSeq, count: end - this.nextSeq + 1 }
  }

  close (): void {
    this.signer?.close()
    this.tree.close()
    for (const l of [...this.listeners]) l.end()
    this.listeners.clear()
    this.pending.clear()
    this.ring.clear()
  }
}
