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

export type Player = ReturnType<typeof createPlayer>

export function createPlayer (session: Session, out: PlayerOutput, clock: Clock, framing: Framing = 'ts') {
  const ring = session.ring
  const pool = session.env?.pool
  const startedMs = clock.nowMs()
  let cursor = -1
  let paused = false
  let gapSinceMs = 0
  let finished = false
  /** Pooled frames whose bytes the output still holds (released when written, or on close). */
  const inFlight = new Set<{ frame: Buffer }>()

  /** Write what can be written now; called on every chunk, on drain, and on the service's tick. */
  function pump (): void {
    if (finished || cursor === -1) return
    const s = session
    const now = clock.nowMs()
    while (!paused) {
      const frame = ring.get(cursor)
      if (frame !== undefined) {
        gapSinceMs = 0
        write(cursor++, frame)
      } else if (ring.size > 0 && cursor < ring.floor) {
        // Too slow: the ring moved past us. Resume at the newest start point.
        const to = ring.startPoint()
        player.skipped += Math.max(0, to - cursor)
        cursor = to
      } else if (cursor > s.newestSeq) {
        if (s.ended && cursor > s.endSeq) finish()
        return
      } else {
        // A hole with newer chunks behind it: wait while the node still tries to repair it.
        if (gapSinceMs === 0) gapSinceMs = now
        const givenUp = s.nextSeq > cursor || s.ended
        if (!givenUp && now - gapSinceMs < STREAM_PLAYER_GAP_MS) return
        let next = cursor
        while (next <= s.newestSeq && !ring.has(next)) next++
        player.skipped += next - cursor
        cursor = next
        gapSinceMs = 0
      }
    }
  }

  function write (seq: number, frame: Buffer): void {
    const packets = frame.subarray(CHUNK_PACKETS_OFFSET)
    let data = packets
    let done = (): void => {}
    if (framing === 'seq') {
      data = Buffer.allocUnsafe(6 + packets.length)
      data.writeUInt32BE(seq >>> 0, 0)
      data.writeUInt16BE(packets.length / TS_PACKET_BYTES, 4)
      packets.copy(data, 6)
    } else if (pool !== undefined) {
      // The output keeps a view of the ring's frame until it has written it: hold the frame till then.
      const entry = { frame }
      pool.retain(frame)
      inFlight.add(entry)
      done = () => { if (inFlight.delete(entry)) pool.release(frame) }
    }
    player.firstByteMs ??= clock.nowMs()
    player.chunks++
    player.bytes += packets.length
    if (!out.write(data, done)) paused = true
  }

  /** End the output (once). */
  function finish (): void {
    if (!finished) out.end()
    finished = true
  }

  out.onDrain(() => { paused = false; pump() })

  const player = {
    startedMs,
    get cursor (): number { return cursor },
    /** Chunks and packet bytes written, chunks skipped (too slow, or given up), when the first byte went. */
    chunks: 0,
    bytes: 0,
    skipped: 0,
    firstByteMs: null as number | null,
    get done (): boolean { return finished },
    streamId: session.streamId,
    pump,

    start (): void {
      if (ring.size > 0) cursor = ring.startPoint()
      pump()
    },

    chunk (): void {
      if (cursor === -1) cursor = ring.startPoint()
      pump()
    },

    end: pump,

    /** Stop (agent stop, client gone): end the output and let go of every frame it still held. */
    close (): void {
      for (const e of inFlight) pool?.release(e.frame)
      inFlight.clear()
      finish()
    }
  }
  return player satisfies ChunkListener
}
