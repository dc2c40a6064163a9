// The cache's door to the flash: reads of any range (aligned for the device),
// programs that are read back and compared, erases that are read back and
// checked for 0xff (a "prog-noop" or "erase-noop" block lies about success;
// littlefs checks the same way), write accounting, the sorting of errors into
// "this block is bad", "the device is full" and "stop", and group commit: a
// put is acknowledged by the first sync that covers it, whoever started it,
// and a sync runs beside later programs (one at a time).

import { CanopyError } from '../errors'
import { ERASED_BYTE, type Flash, type FlashGeometry } from '../hal'
import { CACHE_OPEN_READ_ATTEMPTS, CACHE_READ_CHUNK_BYTES } from '../limits'
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
 * What a failed write means. 'bad-block': retire the block and go on elsewhere.
 * 'no-space': the host's disk is full; surface it. 'fatal': power lost, device
 * closed, or our own bug: surface it and touch nothing more.
 */
export function classifyWriteError (err: unknown): 'bad-block' | 'no-space' | 'fatal' {
  if (CanopyError.is(err, 'FLASH_IO') || CanopyError.is(err, 'FLASH_NOT_ERASED')) return 'bad-block'
  return CanopyError.is(err, 'FLASH_NO_SPACE') ? 'no-space' : 'fatal'
}

interface Waiter { at: number, ok (): void, fail (err: unknown): void }

export class CacheDevice {
  readonly geometry: FlashGeometry
  readonly counters = { bytesProgrammed: 0, erases: 0, syncs: 0, readErrors: 0 }
  /** A background sync failed (the log seals its open block; the store stops on a fatal error). */
  onSyncError: (err: unknown) => void = () => {}
  /** Programs and erases issued, and how many of them the last successful sync covered. */
  private issued = 0
  private covered = 0
  /** The sync under way: one at a time, the next starts when it ends while anyone waits. */
  private running: Promise<void> | null = null
  private waiters: Waiter[] = []

  /**
   * @param verify read every program and erase back. Off for a file-backed
   *   flash (the Linux twin): there the page cache answers the read, proving
   *   nothing, and a truncate cannot silently do nothing.
   */
  constructor (readonly flash: Flash, private readonly budget: WriteBudget, private readonly verify = true) {
    this.geometry = flash.geometry
  }

  /** Programs or erases not yet covered by a successful sync. */
  get dirty (): boolean { return this.covered < this.issued }

  /** Any range: widened to the device's read unit, then cut back. */
  async read (block: number, offset: number, length: number): Promise<Buffer> {
    const unit = this.geometry.readBytes
    const start = offset - offset % unit
    const end = Math.min(this.geometry.blockBytes, alignEnd(offset + length, unit))
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
    this.issued++
    await this.flash.program(block, offset, data)
    this.counters.bytesProgrammed += data.length
    this.budget.add(data.length)
    if (this.verify && !(await this.read(block, offset, data.length)).equals(data)) throw verifyError('program', block)
  }

  /**
   * Erase, then check the head of the block reads erased: an erase that did
   * nothing ("erase-noop") leaves the old segment header there. The rest
   * needs no read-back: every program is read back anyway, and a leftover
   * old record can never pass for a new one (records carry their segment's
   * number and their own offset).
   */
  async erase (block: number): Promise<void> {
    this.issued++
    await this.flash.erase(block)
    this.counters.erases++
    if (this.verify && !isErased(await this.read(block, 0, Math.min(this.geometry.blockBytes, ERASE_CHECK_BYTES)))) throw verifyError('erase', block)
  }

  /** Whether [offset, blockBytes) of a block reads erased (may we append there?). */
  async erasedFrom (block: number, offset: number): Promise<boolean> {
    const size = this.geometry.blockBytes
    for (let at = offset; at < size; at += CACHE_READ_CHUNK_BYTES) {
      if (!isErased(await this.read(block, at, Math.min(CACHE_READ_CHUNK_BYTES, size - at)))) return false
    }
    return true
  }

  /** Make every program and erase issued so far durable (with the sync under way, or one started after it). */
  async sync (): Promise<void> {
    for (const target = this.issued; this.covered < target;) {
      this.kick()
      await this.running
    }
  }

  /**
   * Start a sync unless one is under way (which starts another when it ends,
   * while anyone waits). Settles the waiters it covers: all of them fail if it
   * fails (after a failed fsync nothing written before it can be trusted).
   */
  kick (): void {
    if (this.running !== null || !this.dirty) return
    const at = this.issued
    const run = this.running = this.flash.sync().then(() => {
      this.counters.syncs++
      this.covered = Math.max(this.covered, at)
      const done = this.waiters.filter((w) => w.at <= at)
      this.waiters = this.waiters.filter((w) => w.at > at)
      for (const w of done) w.ok()
    }, (err: unknown) => {
      this.onSyncError(err)
      this.abandon(err)
      throw err
    }).finally(() => {
      this.running = null
      if (this.waiters.length > 0) this.kick()
    })
    run.catch(() => {}) // a caller of sync() sees the error; a kick has nobody to tell but the waiters
  }

  /**
   * Resolves after a sync that covers every program and erase so far (at once
   * when nothing is unsynced); `onFail` runs, synchronously, if that sync fails.
   */
  synced (onFail?: () => void): Promise<void> {
    if (!this.dirty) return Promise.resolve()
    return new Promise((ok, fail) => this.waiters.push({ at: this.issued, ok, fail: (err) => { onFail?.(); fail(err) } }))
  }

  /** How many wait for a sync. */
  get waiting (): number { return this.waiters.length }

  /** Resolves when no sync is under way. */
  async idle (): Promise<void> {
    while (this.running !== null) await this.running.catch(() => {})
  }

  /** Fail every waiter: a sync failed, or the store stopped before one covered them. */
  abandon (err: unknown): void {
    for (const w of this.waiters.splice(0)) w.fail(err)
  }
}

const alignEnd = (n: number, unit: number): number => Math.ceil(n / unit) * unit

/** A read-back that did not match what was programmed (or an erase that left data). */
const verifyError = (op: string, block: number): CanopyError =>
  new CanopyError('FLASH_IO', `${op} of block ${block} did not read back`, { detail: { op, block, verify: true } })
