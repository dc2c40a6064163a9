// The cache's door to the flash: reads of any range (aligned for the device),
// programs that are read back and compared, erases that are read back and
// checked for 0xff (a "prog-noop" or "erase-noop" block lies about success;
// littlefs checks the same way), write accounting, and the sorting of errors
// into "this block is bad", "the device is full" and "stop".

import { CanopyError } from '../errors'
import { ERASED_BYTE, type Flash, type FlashGeometry } from '../hal'
import { CACHE_OPEN_READ_ATTEMPTS, CACHE_READ_CHUNK_BYTES } from '../limits'
import type { WriteBudget } from './budget'

export interface DeviceCounters {
  bytesProgrammed: number
  erases: number
  syncs: number
  readErrors: number
}

const ERASED_CHUNK = Buffer.alloc(CACHE_READ_CHUNK_BYTES, ERASED_BYTE)
/** Bytes read back after an erase: the segment header and the first record header. */
const ERASE_CHECK_BYTES = 128

/** A read-back that did not match what was programmed (or an erase that left data). */
export const verifyError = (op: string, block: number): CanopyError =>
  new CanopyError('FLASH_IO', `${op} of block ${block} did not read back`, { detail: { op, block, verify: true } })

/**
 * What a failed write means. 'bad-block': retire the block and go on elsewhere.
 * 'no-space': the host's disk is full; surface it. 'fatal': power lost, device
 * closed, or our own bug: surface it and touch nothing more.
 */
export function classifyWriteError (err: unknown): 'bad-block' | 'no-space' | 'fatal' {
  if (!CanopyError.is(err)) return 'fatal'
  if (err.code === 'FLASH_IO' || err.code === 'FLASH_NOT_ERASED') return 'bad-block'
  if (err.code === 'FLASH_NO_SPACE') return 'no-space'
  return 'fatal'
}

export class CacheDevice {
  readonly geometry: FlashGeometry
  readonly counters: DeviceCounters = { bytesProgrammed: 0, erases: 0, syncs: 0, readErrors: 0 }
  /** Programs or erases since the last successful sync. */
  dirty = false

  /**
   * @param verifyPrograms read every program and erase back. Off for a
   *   file-backed flash (the Linux twin): there the page cache answers the
   *   read, proving nothing, and a truncate cannot silently do nothing.
   */
  constructor (readonly flash: Flash, private readonly budget: WriteBudget, private readonly verifyPrograms = true) {
    this.geometry = flash.geometry
  }

  /** Any range: widened to the device's read unit, then cut back. */
  async read (block: number, offset: number, length: number): Promise<Buffer> {
    const unit = this.geometry.readBytes
    const start = Math.floor(offset / unit) * unit
    const end = Math.min(this.geometry.blockBytes, Math.ceil((offset + length) / unit) * unit)
    try {
      const buf = await this.flash.read(block, start, end - start)
      return buf.subarray(offset - start, offset - start + length)
    } catch (err) {
      if (CanopyError.is(err, 'FLASH_IO')) this.counters.readErrors++
      throw err
    }
  }

  /** A read during recovery: a transient EIO is retried before the block counts as unreadable. */
  async readAtOpen (block: number, offset: number, length: number): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.read(block, offset, length)
      } catch (err) {
        if (!CanopyError.is(err, 'FLASH_IO') || attempt >= CACHE_OPEN_READ_ATTEMPTS) throw err
      }
    }
  }

  /** Program, then read back: a block that drops or mangles writes is found here, not by a reader. */
  async program (block: number, offset: number, data: Buffer): Promise<void> {
    this.dirty = true
    await this.flash.program(block, offset, data)
    this.counters.bytesProgrammed += data.length
    this.budget.add(data.length)
    if (!this.verifyPrograms) return
    const back = await this.read(block, offset, data.length)
    if (!back.equals(data)) throw verifyError('program', block)
  }

  /**
   * Erase, then check the head of the block reads erased: an erase that did
   * nothing ("erase-noop") leaves the old segment header there. The rest
   * needs no read-back: every program is read back anyway, and a leftover
   * old record can never pass for a new one (records carry their segment's
   * number and their own offset).
   */
  async erase (block: number): Promise<void> {
    this.dirty = true
    await this.flash.erase(block)
    this.counters.erases++
    if (!this.verifyPrograms) return
    const n = Math.min(this.geometry.blockBytes, ERASE_CHECK_BYTES)
    const back = await this.read(block, 0, n)
    if (!back.equals(ERASED_CHUNK.subarray(0, n))) throw verifyError('erase', block)
  }

  /** Whether [offset, blockBytes) of a block reads erased (may we append there?). */
  async erasedFrom (block: number, offset: number): Promise<boolean> {
    const size = this.geometry.blockBytes
    for (let at = offset; at < size; at += CACHE_READ_CHUNK_BYTES) {
      const n = Math.min(CACHE_READ_CHUNK_BYTES, size - at)
      const back = await this.read(block, at, n)
      if (!back.equals(ERASED_CHUNK.subarray(0, n))) return false
    }
    return true
  }

  async sync (): Promise<void> {
    await this.flash.sync()
    this.counters.syncs++
    this.dirty = false
  }
}
