// Garbage collection on demand. Piece traffic allocates large Buffers (each
// piece, each socket chunk) that V8 frees only when its external-memory
// accounting asks for a GC, about 64 MB later: far too much for a box with
// 128 MB. The transfer code calls collect() every PIECE_GC_BYTES of piece
// traffic instead (a full GC of this small heap takes a few ms).

import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

let gc: (() => void) | null | undefined

export function collectGarbage (): void {
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
