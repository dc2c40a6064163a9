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

const invalid = (message: string): CanopyError => new CanopyError('LINK_FRAME_INVALID', message)

/** A frame with room for payloadBytes; the caller writes the payload at FRAME_HEADER_BYTES. */
export function allocFrame (channel: number, payloadBytes: number): Buffer {
  assert(Number.isInteger(channel) && channel >= 0 && channel <= 255, 'channel is one byte')
  const total = FRAME_HEADER_BYTES + payloadBytes
  assert(total <= LINK_FRAME_BYTES_MAX, `frame of ${total} bytes exceeds ${LINK_FRAME_BYTES_MAX}`)
  const frame = Buffer.allocUnsafe(total)
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
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES)
  private headerFill = 0
  private frame: Buffer | null = null
  private frameFill = 0
  private failed: CanopyError | null = null

  /** With a pool, frames come from its slots: the frame handed to onFrame holds one reference, the caller's to release. */
  constructor (private readonly maxFrameBytes = LINK_FRAME_BYTES_MAX, private readonly pool?: FramePool) {
    assert(maxFrameBytes >= FRAME_HEADER_BYTES && maxFrameBytes <= LINK_FRAME_BYTES_MAX, 'frame bound within the link bound')
  }

  /** Bytes held for a frame not yet complete. */
  get buffered (): number { return this.frame === null ? this.headerFill : this.frameFill }

  push (chunk: Uint8Array, onFrame: (frame: Buffer) => void): void {
    if (this.failed !== null) throw this.failed
    let at = 0
    while (at < chunk.length) {
      if (this.frame === null) {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - at)
        this.header.set(chunk.subarray(at, at + take), this.headerFill)
        this.headerFill += take
        at += take
        if (this.headerFill < FRAME_HEADER_BYTES) return
        const length = this.header.readUInt32BE(0)
        if (length < 1 || length > this.maxFrameBytes - 4) {
          this.failed = invalid(length < 1 ? 'a link frame of length 0' : `a link frame of ${length + 4} bytes exceeds ${this.maxFrameBytes}`)
          throw this.failed
        }
        this.frame = this.pool !== undefined ? this.pool.take(length + 4) : Buffer.allocUnsafe(length + 4)
        this.header.copy(this.frame, 0)
        this.frameFill = FRAME_HEADER_BYTES
        this.headerFill = 0
      }
      const frame = this.frame
      const take = Math.min(frame.length - this.frameFill, chunk.length - at)
      frame.set(chunk.subarray(at, at + take), this.frameFill)
      this.frameFill += take
      at += take
      if (this.frameFill === frame.length) {
        this.frame = null
        this.frameFill = 0
        onFrame(frame)
      }
    }
  }
}
