// A link's send queue: bounded by frames and by bytes, FIFO, with an
// optional expiry per frame (a live chunk past its playout deadline is
// dropped when it reaches the head, never written late).

import { assert } from '../../errors'

interface Entry { frame: Buffer, expiresAtMs: number }

export class FrameQueue {
  /** Entries from #head on are queued (slots before it are emptied: no frame stays referenced); compacted now and then. */
  #items: Array<Entry | undefined> = []
  #head = 0
  bytes = 0

  constructor (readonly framesMax: number, readonly bytesMax: number) {
    assert(framesMax > 0 && bytesMax > 0, 'queue bounds')
  }

  get length (): number { return this.#items.length - this.#head }

  /** False (nothing queued) when the frame would pass either bound. */
  push (frame: Buffer, expiresAtMs: number): boolean {
    if (this.length >= this.framesMax || this.bytes + frame.length > this.bytesMax) return false
    this.#items.push({ frame, expiresAtMs })
    this.bytes += frame.length
    return true
  }

  shift (): Entry | undefined {
    const e = this.#items[this.#head]
    if (e === undefined) return undefined
    this.#items[this.#head++] = undefined
    this.bytes -= e.frame.length
    // Compact now and then so the array does not grow without bound.
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    assert(this.bytes >= 0, 'queue bytes')
    return e
  }

  /** Empty the queue; each frame that was in it goes to onDropped (so its holder can release it). */
  clear (onDropped: (frame: Buffer) => void = () => {}): void {
    for (const e of this.#items.slice(this.#head)) onDropped(e!.frame)
    this.#items = []
    this.#head = 0
    this.bytes = 0
  }
}
