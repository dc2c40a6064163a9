// Link frames: [u32 BE length][u8 channel][payload], length = 1 + payload
// bytes. The decoder refuses a frame on its declared length before it buffers
// a byte of it, then allocates the whole frame once (header included) and
// copies into it as bytes arrive, so a received frame is one exact Buffer
// that can be forwarded unchanged (stream relays send the same Buffer to
// every child).

import { CanopyError, assert } from '../../errors'
import { LINK_FRAME_BYTES_MAX } from '../../limits'
import type { FramePool } from './pool'

export const FRAME_HEADER_BYTES = 5

/** A frame with room for payloadBytes (from pool, if given: the caller holds its one reference); the caller writes the payload at FRAME_HEADER_BYTES. */
export function allocFrame (channel: number, payloadBytes: number, pool?: FramePool): Buffer {
  assert(channel >= 0 && channel <= 255, 'channel')
  const total = FRAME_HEADER_BYTES + payloadBytes
  assert(total <= LINK_FRAME_BYTES_MAX, 'frame size')
  const frame = pool?.take(total) ?? Buffer.allocUnsafe(total)
  frame.writeUInt32BE(1 + payloadBytes, 0)
  frame[4] = channel
  return frame
}

/** A frame holding a copy of payload. */
export function encodeFrame (channel: number, payload: Uint8Array): Buffer {
  const frame = allocFrame(channel, payload.length)
  frame.set(payload, FRAME_HEADER_BYTES)
  return frame
}

export const framePayload = (frame: Buffer): Buffer => frame.subarray(FRAME_HEADER_BYTES)

/**
 * Incremental decoder for one connection's byte stream. push() calls onFrame
 * for every complete frame, in order; it throws LINK_FRAME_INVALID (and stays
 * failed) on a zero or oversized length.
 */
export type FrameDecoder = ReturnType<typeof createFrameDecoder>

/** With a pool, frames come from its slots: the frame handed to onFrame holds one reference, the caller's to release. */
export function createFrameDecoder (max = LINK_FRAME_BYTES_MAX, pool?: FramePool) {
  assert(max >= FRAME_HEADER_BYTES && max <= LINK_FRAME_BYTES_MAX, 'frame bound')
  const header = Buffer.alloc(FRAME_HEADER_BYTES)
  /** Bytes of the header, then of the frame, received so far. */
  let fill = 0
  let frame: Buffer | null = null
  let failed: CanopyError | null = null
  return {
    /** Bytes held for a frame not yet complete. */
    get buffered (): number { return fill },

    push (chunk: Uint8Array, onFrame: (frame: Buffer) => void): void {
      if (failed !== null) throw failed
      let at = 0
      for (;;) {
        const into = frame ?? header
        const take = Math.min(into.length - fill, chunk.length - at)
        into.set(chunk.subarray(at, at += take), fill)
        if ((fill += take) < into.length) return
        if (frame === null) {
          // A whole header: check the length before a byte of the frame is buffered (an empty payload completes at once).
          const length = header.readUInt32BE(0)
          if (length < 1 || length > max - 4) throw (failed = new CanopyError('LINK_FRAME_INVALID', `frame of ${length + 4} bytes`))
          frame = pool?.take(length + 4) ?? Buffer.allocUnsafe(length + 4)
          header.copy(frame)
        } else {
          const done = frame
          frame = null
          fill = 0
          onFrame(done)
        }
      }
    }
  }
}
