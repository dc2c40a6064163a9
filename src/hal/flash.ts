// The storage the flash cache sits on, shaped like littlefs's block device:
// a geometry, and read / program / erase / sync. Erased bytes read as 0xff; a
// byte may be programmed once between erases; nothing is durable until sync.
// Twins: flash-file.ts (Linux, files + fsync) and flash-sim.ts (faults).

import { CanopyError } from '../errors'
import { FLASH_BLOCK_BYTES_MAX, FLASH_BLOCK_COUNT_MAX } from '../limits'

export interface FlashGeometry {
  /** Reads start and end on multiples of this. */
  readBytes: number
  /** Programs start and end on multiples of this. */
  programBytes: number
  /** The erase unit. */
  blockBytes: number
  blockCount: number
}

export interface Flash {
  readonly geometry: FlashGeometry
  read (block: number, offset: number, length: number): Promise<Buffer>
  /** Write to erased bytes; the range stays within one block. */
  program (block: number, offset: number, data: Uint8Array): Promise<void>
  /** Set a whole block to 0xff. */
  erase (block: number): Promise<void>
  /** Make every earlier program and erase durable. */
  sync (): Promise<void>
  close (): Promise<void>
}

export const ERASED_BYTE = 0xff

const isPow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0

export function checkGeometry (g: FlashGeometry): void {
  const ok = isPow2(g.readBytes) && isPow2(g.programBytes) && isPow2(g.blockBytes) &&
    g.blockBytes >= Math.max(g.readBytes, g.programBytes) && // powers of two: then a multiple of both
    g.blockBytes <= FLASH_BLOCK_BYTES_MAX &&
    Number.isInteger(g.blockCount) && g.blockCount >= 2 && g.blockCount <= FLASH_BLOCK_COUNT_MAX
  if (!ok) throw new CanopyError('FLASH_BAD_ADDRESS', `invalid flash geometry ${JSON.stringify(g)}`)
}

/** Bounds and alignment of one operation: a violation is our bug, not the device's. */
export function checkRange (g: FlashGeometry, block: number, offset: number, length: number, unit: number): void {
  if (!Number.isInteger(block) || block < 0 || block >= g.blockCount ||
    !Number.isInteger(offset) || offset < 0 || !Number.isInteger(length) || length < 0 ||
    offset + length > g.blockBytes || offset % unit !== 0 || length % unit !== 0) {
    throw new CanopyError('FLASH_BAD_ADDRESS', `flash block ${block} offset ${offset} length ${length} unit ${unit}`,
      { detail: { block, offset, length } })
  }
}

export const sameGeometry = (a: FlashGeometry, b: FlashGeometry): boolean =>
  a.readBytes === b.readBytes && a.programBytes === b.programBytes && a.blockBytes === b.blockBytes && a.blockCount === b.blockCount
