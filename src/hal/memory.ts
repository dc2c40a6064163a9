// Garbage collection on demand. Piece traffic allocates large Buffers (each
// piece, each socket chunk) that V8 frees only when its external-memory
// accounting asks for a GC, about 64 MB later: far too much for a box with
// 128 MB. The transfer code calls collect() every PIECE_GC_BYTES of piece
// traffic instead (a full GC of this small heap takes a few ms), at most
// every GC_INTERVAL_MS: at LAN rates of hundreds of MB/s, V8's own schedule
// takes over rather than a GC per 16 MiB eating the CPU.

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

const GC_INTERVAL_MS = 250
let gc: (() => void) | null | undefined
let lastMs = -Infinity

export function collectGarbage (): void {
  const now = performance.now()
  if (now - lastMs < GC_INTERVAL_MS) return
  lastMs = now
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gc = runInNewContext('gc') as () => void
    } catch {
      gc = null // not available here: V8 collects on its own schedule
    }
  }
  gc?.()
}
