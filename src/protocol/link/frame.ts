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
export class FrameDecoder {
  readonly #header = Buffer.alloc(FRAME_HEADER_BYTES)
  readonly #max: number
  readonly #pool: FramePool | undefined
  /** Bytes of the header, then of the frame, received so far. */
  #fill = 0
  #frame: Buffer | null = null
  #failed: CanopyError | null = null

  /** With a pool, frames come from its slots: the frame handed to onFrame holds one reference, the caller's to release. */
  constructor (maxFrameBytes = LINK_FRAME_BYTES_MAX, pool?: FramePool) {
    assert(maxFrameBytes >= FRAME_HEADER_BYTES && maxFrameBytes <= LINK_FRAME_BYTES_MAX, 'frame bound')
    this.#max = maxFrameBytes
    this.#pool = pool
  }

  /** Bytes held for a frame not yet complete. */
  get buffered (): number { return this.#fill }

  push (chunk: Uint8Array, onFrame: (frame: Buffer) => void): void {
    if (this.#failed !== null) throw this.#failed
    let at = 0
    for (;;) {
      const into = this.#frame ?? this.#header
      const take = Math.min(into.length - this.#fill, chunk.length - at)
      into.set(chunk.subarray(at, at += take), this.#fill)
      if ((this.#fill += take) < into.length) return
      if (this.#frame === null) {
        // A whole header: check the length before a byte of the frame is buffered (an empty payload completes at once).
        const length = this.#header.readUInt32BE(0)
        if (length < 1 || length > this.#max - 4) {
          throw (this.#failed = new CanopyError('LINK_FRAME_INVALID', `frame of ${length + 4} bytes`))
        }
        this.#frame = this.#pool?.take(length + 4) ?? Buffer.allocUnsafe(length + 4)
        this.#header.copy(this.#frame)
      } else {
        const frame = this.#frame
        this.#frame = null
        this.#fill = 0
        onFrame(frame)
      }
    }
  }
}
