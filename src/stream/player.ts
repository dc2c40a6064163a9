// One local player of a stream: a cursor over the node's one ring buffer
// that writes chunks in sequence order, exactly as received (byte-identical
// TS packets), to an output with backpressure. Any number of players share
// the ring and the node's one upstream subscription.
//
// It starts at the ring's start point (FORMAT.md "Start points"); it waits up
// to STREAM_PLAYER_GAP_MS for a missing chunk (a repair in progress) before
// skipping it; a player too slow to keep up with the ring jumps to the newest
// start point (counted in skipped).

import type { Clock } from '../hal'
import { STREAM_PLAYER_GAP_MS, TS_PACKET_BYTES } from '../limits'
import type { FramePool } from '../protocol/link'
import type { ChunkListener, Session } from './session'
import { CHUNK_PACKETS_OFFSET } from './wire'

export interface PlayerOutput {
  /** false: stop writing until drain. done() runs once the output no longer needs data's bytes. */
  write (data: Buffer, done: () => void): boolean
  onDrain (fn: () => void): void
  end (): void
}

/** "ts": plain MPEG-TS. "seq": each chunk as [u32 seq][u16 packets][packets] (tools and tests that count chunks). */
export type Framing = 'ts' | 'seq'

export class Player implements ChunkListener {
  cursor = -1
  chunks = 0
  bytes = 0
  skipped = 0
  readonly startedMs: number
  firstByteMs: number | null = null
  private paused = false
  private gapSinceMs = 0
  private finished = false
  /** Pooled frames whose bytes the output still holds (released when written, or on close). */
  private readonly inFlight = new Set<{ frame: Buffer }>()

  constructor (private readonly session: Session, private readonly out: PlayerOutput, private readonly clock: Clock, private readonly framing: Framing = 'ts') {
    this.startedMs = clock.nowMs()
    out.onDrain(() => { this.paused = false; this.pump() })
  }

  get done (): boolean { return this.finished }
  get streamId (): string { return this.session.streamId }

  start (): void {
    const ring = this.session.ring
    if (ring.size > 0) this.cursor = ring.startPoint()
    this.pump()
  }

  chunk (): void {
    if (this.cursor === -1) this.cursor = this.session.ring.startPoint()
    this.pump()
  }

  end (): void { this.pump() }

  /** Write what can be written now; called on every chunk, on drain, and on the service's tick. */
  pump (): void {
    if (this.finished || this.cursor === -1) return
    const s = this.session
    const ring = s.ring
    const now = this.clock.nowMs()
    while (!this.paused) {
      const frame = ring.get(this.cursor)
      if (frame !== undefined) {
        this.gapSinceMs = 0
        this.write(this.cursor, frame)
        this.cursor++
        continue
      }
      if (ring.size > 0 && this.cursor < ring.floor) {
        // Too slow: the ring moved past us. Resume at the newest start point.
        const to = ring.startPoint()
        this.skipped += Math.max(0, to - this.cursor)
        this.cursor = to
        continue
      }
      if (this.cursor > s.newestSeq) {
        if (s.ended && this.cursor > s.endSeq) this.finish()
        return
      }
      // A hole with newer chunks behind it: wait while the node still tries to repair it.
      if (this.gapSinceMs === 0) this.gapSinceMs = now
      const givenUp = s.nextSeq > this.cursor || s.ended
      if (!givenUp && now - this.gapSinceMs < STREAM_PLAYER_GAP_MS) return
      let next = this.cursor
      while (next <= s.newestSeq && !ring.has(next)) next++
      this.skipped += next - this.cursor
      this.cursor = next
      this.gapSinceMs = 0
    }
  }

  private write (seq: number, frame: Buffer): void {
    const packets = frame.subarray(CHUNK_PACKETS_OFFSET)
    let data = packets
    let done = (): void => {}
    if (this.framing === 'seq') {
      data = Buffer.allocUnsafe(6 + packets.length)
      data.writeUInt32BE(seq >>> 0, 0)
      data.writeUInt16BE(packets.length / TS_PACKET_BYTES, 4)
      packets.copy(data, 6)
    } else if (this.pool !== undefined) {
      // The output keeps a view of the ring's frame until it has written it: hold the frame till then.
      const entry = { frame }
      this.pool.retain(frame)
      this.inFlight.add(entry)
      done = () => { if (this.inFlight.delete(entry)) this.pool!.release(frame) }
    }
    if (this.firstByteMs === null) this.firstByteMs = this.clock.nowMs()
    this.chunks++
    this.bytes += packets.length
    if (!this.out.write(data, done)) this.paused = true
  }

  private get pool (): FramePool | undefined { return this.session.env?.pool }

  private releaseAll (): void {
    for (const e of this.inFlight) this.pool?.release(e.frame)
    this.inFlight.clear()
  }

  private finish (): void {
    if (this.finished) return
    this.finished = true
    this.out.end()
  }

  /** Stop (agent stop, client gone): end the output and let go of every frame it still held. */
  close (): void {
    this.releaseAll()
    if (this.finished) return
    this.finished = true
    this.out.end()
  }
}
