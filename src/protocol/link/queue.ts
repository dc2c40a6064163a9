// A link's send queue: bounded by frames and by bytes, FIFO, with an
// optional expiry per frame (a live chunk past its playout deadline is
// dropped when it reaches the head, never written late).

import { assert } from '../../errors'

interface Entry { frame: Buffer, expiresAtMs: number }

export class FrameQueue {
  private items: Array<Entry | undefined> = []
  private head = 0
  private count = 0
  bytes = 0

  constructor (readonly framesMax: number, readonly bytesMax: number) {
    assert(framesMax > 0 && bytesMax > 0, 'queue bounds are positive')
  }

  get length (): number { return this.count }

  /** False (nothing queued) when the frame would pass either bound. */
  push (frame: Buffer, expiresAtMs: number): boolean {
    if (this.count >= this.framesMax || this.bytes + frame.length > this.bytesMax) return false
    this.items.push({ frame, expiresAtMs })
    this.count++
    this.bytes += frame.length
    return true
  }

  shift (): Entry | undefined {
    if (this.count === 0) return undefined
    const e = this.items[this.head]!
    this.items[this.head] = undefined
    this.head++
    this.count--
    this.bytes -= e.frame.length
    // Compact now and then so the array does not grow without bound.
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    assert(this.bytes >= 0 && this.count >= 0, 'queue accounting stays non-negative')
    return e
  }

  /** Empty the queue; each frame that was in it goes to onDropped (so its holder can release it). */
  clear (onDropped: (frame: Buffer) => void = () => {}): void {
    for (let i = this.head; i < this.items.length; i++) {
      const e = this.items[i]
      if (e !== undefined) onDropped(e.frame)
    }
    this.items = []
    this.head = 0
    this.count = 0
    this.bytes = 0
  }
}
