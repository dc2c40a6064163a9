// A link's send queue: bounded by frames and by bytes, FIFO, with an
// optional expiry per frame (a live chunk past its playout deadline is
// dropped when it reaches the head, never written late).

import { assert } from '../../errors'

/** until: monotonic ms after which the frame is dropped (0: never). */
interface Entry { frame: Buffer, until: number }

export type FrameQueue = ReturnType<typeof createFrameQueue>

export function createFrameQueue (framesMax: number, bytesMax: number) {
  assert(framesMax > 0 && bytesMax > 0, 'queue bounds')
  /** Entries from head on are queued (slots before it are emptied: no frame stays referenced); compacted now and then. */
  let items: Array<Entry | undefined> = []
  let head = 0
  const q = {
    bytes: 0,
    get length (): number { return items.length - head },

    /** False (nothing queued) when the frame would pass either bound. */
    push (frame: Buffer, expiresAtMs: number): boolean {
      if (q.length >= framesMax || q.bytes + frame.length > bytesMax) return false
      items.push({ frame, until: expiresAtMs })
      q.bytes += frame.length
      return true
    },

    shift (): Entry | undefined {
      const e = items[head]
      if (e === undefined) return undefined
      items[head++] = undefined
      q.bytes -= e.frame.length
      // Compact now and then so the array does not grow without bound.
      if (head >= 1024 && head * 2 >= items.length) {
        items = items.slice(head)
        head = 0
      }
      assert(q.bytes >= 0, 'queue bytes')
      return e
    },

    /** Empty the queue; each frame that was in it goes to onDropped (so its holder can release it). */
    clear (onDropped: (frame: Buffer) => void): void {
      for (const e of items.slice(head)) onDropped(e!.frame)
      items = []
      head = 0
      q.bytes = 0
    }
  }
  return q
}
