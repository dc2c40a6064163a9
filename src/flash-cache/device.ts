// The cache's door to the flash: reads of any range (aligned for the device),
// programs that are read back and compared, erases that are read back and
// checked for 0xff (a "prog-noop" or "erase-noop" block lies about success;
// littlefs checks the same way), write accounting, the sorting of errors into
// "this block is bad", "the device is full" and "stop", and group commit: a
// put is acknowledged by the first sync that covers it, whoever started it,
// and a sync runs beside later programs (one at a time).

import { CanopyError } from '../errors'
import { ERASED_BYTE, type Flash, type FlashGeometry } from '../hal'
import { CACHE_READ_CHUNK_BYTES } from '../limits'
import type { WriteBudget } from './budget'

const ERASED_CHUNK = Buffer.alloc(CACHE_READ_CHUNK_BYTES, ERASED_BYTE)
/** Bytes read back after an erase: the segment header and the first record header. */
const ERASE_CHECK_BYTES = 128

/** Whether every byte reads erased. */
export function isErased (b: Buffer): boolean {
  for (let at = 0; at < b.length; at += ERASED_CHUNK.length) {
    const n = Math.min(ERASED_CHUNK.length, b.length - at)
    if (!b.subarray(at, at + n).equals(ERASED_CHUNK.subarray(0, n))) return false
  }
  return true
}

/**
 * What a failed write means. A bad block: retire it and go on elsewhere. No
 * space (FLASH_NO_SPACE): the host's disk is full; surface it. Anything else
 * is fatal (power lost, device closed, our own bug): surface it and touch
 * nothing more.
 */
export const isBadBlock = (err: unknown): boolean => CanopyError.is(err, 'FLASH_IO') || CanopyError.is(err, 'FLASH_NOT_ERASED')
export const isFatalWrite = (err: unknown): boolean => !isBadBlock(err) && !CanopyError.is(err, 'FLASH_NO_SPACE')

const isIoError = (err: unknown): boolean => CanopyError.is(err, 'FLASH_IO')

export interface CacheDevice {
  readonly geometry: FlashGeometry
  readonly counters: { bytesProgrammed: number, erases: number, syncs: number, readErrors: number }
  /** Programs or erases not yet covered by a successful sync. */
  readonly dirty: boolean
  /** Puts waiting for a sync. */
  readonly waiting: number
  /**
   * Any range: widened to the device's read unit, then cut back. `attempts`:
   * recovery retries a transient EIO before a block counts as unreadable.
   */
  read (block: number, offset: number, length: number, attempts?: number): Promise<Buffer>
  /** Program, then (verify) read back: a block that drops or mangles writes is found here, not by a reader. */
  program (block: number, offset: number, data: Buffer): Promise<void>
  /**
   * Erase, then (verify) check the head of the block reads erased: an erase
   * that did nothing ("erase-noop") leaves the old segment header there. The
   * rest needs no read-back: every program is read back anyway, and a
   * leftover old record can never pass for a new one (records carry their
   * segment's number and their own offset).
   */
  erase (block: number): Promise<void>
  /** Whether [offset, blockBytes) of a block reads erased (may we append there?). */
  erasedFrom (block: number, offset: number): Promise<boolean>
  /** Make every program and erase issued so far durable (with the sync under way, or one started after it). */
  sync (): Promise<void>
  /** Start a sync unless one is under way (which starts another when it ends, while anyone waits). */
  kick (): void
  /**
   * Resolves after a sync that covers every program and erase so far (at once
   * when nothing is unsynced); `onFail` runs, synchronously, if that sync fails.
   */
  synced (onFail?: () => void): Promise<void>
  /** Resolves when no sync is under way. */
  idle (): Promise<void>
  /** Fail every waiter: a sync failed, or the store stopped before one covered them. */
  abandon (err: unknown): void
}

interface Waiter { at: number, ok (): void, fail (err: unknown): void }

/**
 * @param verify read every program and erase back. Off for a file-backed
 *   flash (the Linux twin): there the page cache answers the read, proving
 *   nothing, and a truncate cannot silently do nothing.
 * @param onSyncError a sync failed: after that nothing written before it can
 *   be trusted (every waiter fails too).
 */
export function createDevice (flash: Flash, budget: WriteBudget, verify: boolean, onSyncError: (err: unknown) => void): CacheDevice {
  const g = flash.geometry
  const counters = { bytesProgrammed: 0, erases: 0, syncs: 0, readErrors: 0 }
  // Programs and erases issued, and how many of them the last successful sync covered.
  let issued = 0
  let covered = 0
  // The sync under way: one at a time, the next starts when it ends while anyone waits.
  let running: Promise<void> | null = null
  let waiters: Waiter[] = []

  const read = async (block: number, offset: number, length: number, attempts = 1): Promise<Buffer> => {
    const unit = g.readBytes
    const start = offset - offset % unit
    const end = Math.min(g.blockBytes, Math.ceil((offset + length) / unit) * unit)
    for (let attempt = 1; ; attempt++) {
      try {
        return (await flash.read(block, start, end - start)).subarray(offset - start, offset - start + length)
      } catch (err) {
        if (!isIoError(err)) throw err
        counters.readErrors++
        if (attempt >= attempts) throw err
      }
    }
  }
  const verifyError = (op: string, block: number): CanopyError =>
    new CanopyError('FLASH_IO', `${op} of block ${block} did not read back`, { detail: { op, block } })
  const abandon = (err: unknown): void => { for (const w of waiters.splice(0)) w.fail(err) }
  const kick = (): void => {
    if (running !== null || covered >= issued) return
    const at = issued
    running = flash.sync().then(() => {
      counters.syncs++
      covered = Math.max(covered, at)
      const done = waiters.filter((w) => w.at <= at)
      waiters = waiters.filter((w) => w.at > at)
      for (const w of done) w.ok()
    }, (err: unknown) => {
      onSyncError(err)
      abandon(err)
      throw err
    }).finally(() => {
      running = null
      if (waiters.length > 0) kick()
    })
    running.catch(() => {}) // a caller of sync() sees the error; a kick has nobody to tell but the waiters
  }

  return {
    geometry: g,
    counters,
    get dirty () { return covered < issued },
    get waiting () { return waiters.length },
    read,
    async program (block, offset, data) {
      issued++
      await flash.program(block, offset, data)
      counters.bytesProgrammed += data.length
      budget.add(data.length)
      if (verify && !(await read(block, offset, data.length)).equals(data)) throw verifyError('program', block)
    },
    async erase (block) {
      issued++
      await flash.erase(block)
      counters.erases++
      if (verify && !isErased(await read(block, 0, Math.min(g.blockBytes, ERASE_CHECK_BYTES)))) throw verifyError('erase', block)
    },
    async erasedFrom (block, offset) {
      for (let at = offset; at < g.blockBytes; at += CACHE_READ_CHUNK_BYTES) {
        if (!isErased(await read(block, at, Math.min(CACHE_READ_CHUNK_BYTES, g.blockBytes - at)))) return false
      }
      return true
    },
    async sync () {
      for (const target = issued; covered < target;) {
        kick()
        await running
      }
    },
    kick,
    synced (onFail) {
      if (covered >= issued) return Promise.resolve()
      return new Promise((ok, fail) => waiters.push({ at: issued, ok, fail: (err) => { onFail?.(); fail(err) } }))
    },
    async idle () {
      while (running !== null) await running.catch(() => {})
    },
    abandon
  }
}
