// Shared by the SIGKILL lab test and its child writer: the cache settings and
// the deterministic pieces (piece i is the same bytes in both processes).

import { createHash } from 'node:crypto'
import { createSeededRandom, type FlashGeometry } from '../../src/hal'

export const LAB_CACHE = {
  geometry: { readBytes: 16, programBytes: 16, blockBytes: 64 * 1024, blockCount: 24 } satisfies FlashGeometry,
  options: { bytesMax: 600_000, piecesMax: 150, writeBudgetBytesPerDay: 1 << 30 },
  poolSize: 400
}

export function labPiece (i: number): { hash: string, bytes: Buffer } {
  const r = createSeededRandom(1000 + i)
  const bytes = r.bytes(1 + r.int(20_000))
  bytes.writeUInt32LE(i, 0)
  return { hash: createHash('sha256').update(bytes).digest('hex'), bytes }
}
