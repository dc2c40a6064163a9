// The flash cache: a bounded, crash-safe store of verified pieces, named by
// their SHA-256, on a HAL flash device. One writer at a time (a bounded
// queue); reads run beside it. See FORMAT.md for the bytes and the module
// files for each mechanism:
//
//   recover.ts     open: segment headers, newest checkpoint, replay
//   log.ts         appending records, one open segment, sync rules
//   compact.ts     freeing blocks, obituaries for blocks that will not erase
//   checkpoint.ts  checkpoints in the log, anchors in two slots
//   reader.ts      verified reads, streaming
//   device.ts      read-back checks, error sorting, group-commit waiters
//
// Guarantees: put resolves only once the piece is durable; get never returns
// bytes that are not the piece's; stored bytes stay within the bound plus one
// piece; a failed write retires its block and the store goes on.
//
// Group commit: a put's bytes are copied and hashed while the write before it
// is under way (at most one ahead, so two pieces in memory), then appended,
// and a sync starts unless one is under way; a sync acknowledges every put it
// covers. Syncs run beside the next writes, one at a time: the next starts
// when one ends, for the puts written meanwhile (at most the write queue).
// Alone, a put syncs for itself.

import type { Readable } from 'node:stream'
import { assert, CanopyError } from '../errors'
import { FileFlash, type Clock, type Flash } from '../hal'
import {
  CACHE_BLOCK_BYTES_MIN, CACHE_CHECKPOINT_PARTS_MAX, CACHE_COMPACTION_ROUNDS_MAX, CACHE_FILL_RATIO_MAX,
  CACHE_PENDING_WRITES_MAX, CACHE_PIECE_COUNT_MAX, CACHE_PIN_COUNT_MAX, CACHE_RESERVE_BLOCKS, CACHE_SLOT_BLOCKS
} from '../limits'
import { silentLogger, type Logger } from '../log'
import { WriteBudget, type WriteBudgetStatus } from './budget'
import { Checkpointer } from './checkpoint'
import { Compactor } from './compact'
import { crc32Native } from './crc32'
import { CacheDevice } from './device'
import { alignUp, allocRecord, ANCHOR_FIXED_BYTES, ANCHOR_PART_BYTES, bodyBytesMax, checkpointBytesFor, encodeCheckpoint, RECORD_HEADER_BYTES, recordBytesFor, RecordType, SEGMENT_HEADER_BYTES, sha256, type CheckpointCounters } from './format'
import { pieceKey, type PieceHash } from './key'
import { LogWriter } from './log'
import { PieceReader, type VerifyReads } from './reader'
import { recover, type RecoveryReport } from './recover'
import type { CacheState, PieceLoc } from './state'

export interface FlashCacheOptions {
  clock: Clock
  /** Bound on stored piece bytes (lowered automatically when bad blocks shrink the flash). */
  bytesMax: number
  /** Bound on the number of pieces. */
  piecesMax: number
  writeBudgetBytesPerDay: number
  log?: Logger
  /** Bytes appended between checkpoints, at least (default: four blocks). */
  checkpointIntervalBytesMin?: number
  /** Called for every piece evicted to keep the bounds. */
  onEvict?: (hash: string) => void
  /**
   * How a get checks a piece before handing it out: 'crc32' (default) checks
   * each record's commit CRC, which proves the bytes are those written (and
   * they were checked against their SHA-256 before they were written);
   * 'sha256' also hashes them again. Where Node has no native CRC-32 (before
   * 20.15) the CRC costs more than SHA-256, and 'sha256' is used. See
   * FORMAT.md, "Verification on read".
   */
  verifyReads?: VerifyReads
  /**
   * Read every program back and compare, and check erased blocks read erased
   * (littlefs does). Default: on, except on the Linux twin (FileFlash), where
   * the page cache would answer the read.
   */
  verifyPrograms?: boolean
  /** Tests only: acknowledge puts without syncing. The power-cut suite must notice. */
  unsafeSkipAckSync?: boolean
}

export interface FlashCacheStats {
  pieces: number
  bytes: number
  bytesMax: number
  piecesMax: number
  /** Bytes that can be stored before something is evicted. */
  freeBytes: number
  pieceBytesMax: number
  pinned: number
  evictions: number
  corruptDropped: number
  reads: number
  readErrors: number
  tombstones: number
  verifyReads: VerifyReads
  flash: { blockBytes: number, blockCount: number, freeBlocks: number, badBlocks: number, deadBlocks: number, unreadableBlocks: number }
  writes: { bytesProgrammed: number, erases: number, syncs: number, bytesAccepted: number, amplification: number, splitPieces: number, budget: WriteBudgetStatus }
  compactions: number
  checkpoints: { written: number, failed: number, revision: number }
  recovery: RecoveryReport & { ms: number }
  backgroundErrors: number
}

/** Usable bytes for pieces on a flash of this geometry (before the fill ratio). */
const capacityBytes = (goodBlocks: number, usableBytes: number): number => Math.max(0, goodBlocks - CACHE_RESERVE_BLOCKS - 1) * usableBytes

/** Largest bytesMax a geometry supports. */
export const boundBytesMax = (blockBytes: number, blockCount: number, programBytes: number): number =>
  Math.floor(capacityBytes(blockCount - CACHE_SLOT_BLOCKS, blockBytes - alignUp(SEGMENT_HEADER_BYTES, programBytes)) * CACHE_FILL_RATIO_MAX)

const fatal = (err: unknown): boolean =>
  !CanopyError.is(err) || ['FLASH_POWER_CUT', 'FLASH_CLOSED', 'FLASH_BAD_ADDRESS', 'ASSERTION'].includes(err.code)
const closedError = (): CanopyError => new CanopyError('CLOSED', 'the flash cache is closed')
const noop = (): void => {}

export class FlashCache {
  readonly pieceBytesMax: number
  readonly recovery: RecoveryReport & { ms: number }
  /** How gets check pieces here (see FlashCacheOptions.verifyReads). */
  readonly verifyReads: VerifyReads
  private readonly state: CacheState
  private readonly log: LogWriter
  private readonly compactor: Compactor
  private readonly checkpointer: Checkpointer
  private readonly reader: PieceReader
  private readonly logger: Logger
  private readonly pins = new Map<string, number>()
  private readonly counters: CheckpointCounters
  /** Lifetime counters as of open (this session's come from the device). */
  private readonly base: CheckpointCounters
  private chain: Promise<unknown> = Promise.resolve()
  /** Resolves once the newest queued write has started: the next put may copy and hash its bytes from then on. */
  private started: Promise<unknown> = Promise.resolve()
  private pending = 0
  private maintenanceQueued = false
  private backgroundErrors = 0
  private broken: CanopyError | null = null
  private closing = false
  private closed = false

  private constructor (
    private readonly flash: Flash, private readonly options: FlashCacheOptions, private readonly dev: CacheDevice, private readonly budget: WriteBudget,
    r: Awaited<ReturnType<typeof recover>>, ms: number, partsMax: number
  ) {
    const g = flash.geometry
    this.logger = options.log ?? silentLogger
    this.state = r.state
    this.recovery = { ...r.report, ms }
    this.counters = { ...r.counters }
    this.base = { ...r.counters }
    this.pieceBytesMax = bodyBytesMax(g.blockBytes, g.programBytes)
    const log = this.log = new LogWriter(dev, this.state, r.nextSeq)
    log.cpRecords = r.report.replayedRecords
    log.cpBytes = r.replayedBytes
    log.reservedUntil = r.slots.reservedUntil
    const cp = this.checkpointer = new Checkpointer(dev, this.state, log, partsMax, options.checkpointIntervalBytesMin ?? 4 * g.blockBytes,
      r.slots.activeSlot, r.slots.slotEnd, r.slots.revision)
    cp.lastBytes = r.checkpoint?.bytes ?? 0
    cp.current = r.checkpoint
    cp.disabled = r.report.readErrors > 0
    log.reserve = (until) => cp.reserve(until)
    dev.onSyncError = (err) => {
      // The open block's tail is no longer known; power lost or the device closed: stop.
      if (this.state.openBlock !== null) log.seal(this.state.openBlock)
      if (fatal(err)) this.break(err)
    }
    this.compactor = new Compactor(dev, this.state, log,
      (key) => { this.counters.corruptDropped++; this.logger.warn('damaged piece dropped during compaction', { hash: key }) },
      () => { cp.stale = true })
    this.verifyReads = options.verifyReads === 'sha256' || !crc32Native ? 'sha256' : 'crc32'
    this.reader = new PieceReader(dev, this.state, this.verifyReads === 'sha256', (key, loc) => this.dropCorrupt(key, loc))
  }

  /** Open (and recover) the cache on a flash device. */
  static async open (flash: Flash, options: FlashCacheOptions): Promise<FlashCache> {
    const g = flash.geometry
    const blocksMin = CACHE_SLOT_BLOCKS + CACHE_RESERVE_BLOCKS + 3
    if (g.blockBytes < CACHE_BLOCK_BYTES_MIN || alignUp(SEGMENT_HEADER_BYTES, g.programBytes) + 2 * recordBytesFor(0, g.programBytes) > g.blockBytes / 4 || g.blockCount < blocksMin) {
      throw new CanopyError('CONFIG_INVALID', `flash geometry ${JSON.stringify(g)} is too small for the cache (blocks of at least ${CACHE_BLOCK_BYTES_MIN} bytes, at least ${blocksMin} blocks)`)
    }
    if (!Number.isInteger(options.piecesMax) || options.piecesMax < 1 || options.piecesMax > CACHE_PIECE_COUNT_MAX) {
      throw new CanopyError('CONFIG_INVALID', `piecesMax must be 1..${CACHE_PIECE_COUNT_MAX}`)
    }
    const partsMax = Math.min(CACHE_CHECKPOINT_PARTS_MAX, Math.floor((g.blockBytes / 2 - ANCHOR_FIXED_BYTES - 4) / ANCHOR_PART_BYTES))
    const budget = new WriteBudget(options.clock, options.writeBudgetBytesPerDay)
    const dev = new CacheDevice(flash, budget, options.verifyPrograms ?? !(flash instanceof FileFlash))
    const t0 = options.clock.nowMs()
    const r = await recover(dev, partsMax)
    const cache = new FlashCache(flash, options, dev, budget, r, options.clock.nowMs() - t0, partsMax)
    cache.enforceBounds()
    cache.logger.info('flash cache open', { pieces: cache.state.index.size, bytes: cache.state.bytes, recovery: cache.recovery })
    if (r.report.readErrors > 0) cache.logger.warn('flash reads failed during recovery: no checkpoints until the next open', { readErrors: r.report.readErrors })
    cache.scheduleMaintenance()
    return cache
  }

  // ---- the API -----------------------------------------------------------------------

  /**
   * Store a piece; resolves once it is durable. Rejects (and stores nothing)
   * when the bytes do not hash to `hash`. Like fs.write, the caller must not
   * change `bytes` until the promise settles (a changed buffer is refused).
   */
  async put (hash: PieceHash, bytes: Uint8Array): Promise<void> {
    const key = pieceKey(hash)
    if (!(bytes instanceof Uint8Array)) throw new CanopyError('INPUT_INVALID', 'a piece is bytes')
    if (bytes.length > this.pieceBytesMax) {
      throw new CanopyError('CACHE_PIECE_TOO_LARGE', `piece of ${bytes.length} bytes; this cache stores at most ${this.pieceBytesMax}`)
    }
    const n = bytes.length
    const { ack } = await this.exclusive(async (record) => {
      if (this.state.index.has(key)) {
        // Already stored, if the stored copy still verifies; a rotten copy must not turn this put into a false acknowledgement.
        if (await this.reader.check(key)) { this.state.touch(key); return { ack: this.durable() } }
        if (this.state.index.has(key)) {
          this.counters.corruptDropped++
          await this.writeTombstone(key)
        }
      }
      await this.makeRoom(record.length, n)
      const loc = await this.log.appendPiece(Buffer.from(key, 'hex'), record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + n), false, record)
      this.state.addPiece(key, loc)
      this.counters.bytesAccepted += n
      this.assertBounds()
      // A sync that fails takes the piece back out: it was never acknowledged, and it may not be on flash.
      return { ack: this.durable(() => { if (this.state.index.get(key) === loc) { this.state.removePiece(key); this.counters.bytesAccepted -= n } }) }
    }, true, () => {
      // Our own copy, straight into the record buffer, hashed at once: what is hashed is what is written.
      const record = allocRecord(bytes, this.flash.geometry.programBytes)
      if (sha256(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + n)).toString('hex') !== key) throw new CanopyError('CACHE_HASH_MISMATCH', `bytes do not hash to ${key}`)
      return record
    })
    await ack
  }

  /** The piece's bytes, verified; undefined when absent or found damaged (then dropped). */
  async get (hash: PieceHash): Promise<Buffer | undefined> {
    const key = pieceKey(hash)
    this.assertOpen()
    return this.reader.get(key)
  }

  /** A verified piece as a stream of chunks (bytes [start, end)), for large pieces. */
  async readStream (hash: PieceHash, range?: { start?: number, end?: number }): Promise<Readable | undefined> {
    const key = pieceKey(hash)
    this.assertOpen()
    return this.reader.stream(key, range)
  }

  has (hash: PieceHash): boolean { return this.state.index.has(pieceKey(hash)) }

  /** Size of a stored piece, or undefined. */
  sizeOf (hash: PieceHash): number | undefined { return this.state.index.get(pieceKey(hash))?.length }

  /** Remove a piece for good (durable when it resolves); true when it was stored. */
  async delete (hash: PieceHash): Promise<boolean> {
    const key = pieceKey(hash)
    return await this.exclusive(() => this.writeTombstone(key), true)
  }

  /** Keep a piece from eviction (counted: pin twice, unpin twice). The piece need not be stored yet. */
  pin (hash: PieceHash): void {
    const key = pieceKey(hash)
    const n = this.pins.get(key) ?? 0
    if (n === 0 && this.pins.size >= CACHE_PIN_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', `at most ${CACHE_PIN_COUNT_MAX} pieces can be pinned`)
    this.pins.set(key, n + 1)
  }

  unpin (hash: PieceHash): void {
    const key = pieceKey(hash)
    const n = this.pins.get(key) ?? 0
    if (n > 1) this.pins.set(key, n - 1)
    else this.pins.delete(key)
  }

  isPinned (hash: PieceHash): boolean { return this.pins.has(pieceKey(hash)) }

  /** Stored piece hashes, least recently used first (a snapshot: reading pieces reorders the live index). */
  hashes (): string[] { return [...this.state.index.keys()] }

  stats (): FlashCacheStats {
    const s = this.state
    const g = this.flash.geometry
    const c = this.lifetime()
    const bytesMax = this.boundBytes()
    return {
      pieces: s.index.size,
      bytes: s.bytes,
      bytesMax,
      piecesMax: this.options.piecesMax,
      freeBytes: Math.max(0, bytesMax - s.bytes),
      pieceBytesMax: this.pieceBytesMax,
      pinned: this.pins.size,
      evictions: c.evictions,
      corruptDropped: c.corruptDropped,
      reads: this.reader.reads,
      readErrors: this.dev.counters.readErrors,
      tombstones: s.tombs,
      verifyReads: this.verifyReads,
      flash: { blockBytes: g.blockBytes, blockCount: g.blockCount, freeBlocks: s.count('free'), badBlocks: this.log.badBlocksFound, deadBlocks: s.count('dead'), unreadableBlocks: s.count('unknown') },
      writes: {
        bytesProgrammed: c.bytesProgrammed,
        erases: c.erases,
        syncs: this.dev.counters.syncs,
        bytesAccepted: c.bytesAccepted,
        amplification: c.bytesAccepted > 0 ? c.bytesProgrammed / c.bytesAccepted : 0,
        splitPieces: this.log.splitPieces,
        budget: this.budget.status()
      },
      compactions: this.compactor.compactions,
      checkpoints: { written: this.checkpointer.written, failed: this.checkpointer.failed, revision: this.checkpointer.revision },
      recovery: this.recovery,
      backgroundErrors: this.backgroundErrors
    }
  }

  /** Resolves once every queued write, and the background work they started (syncs too), has finished. */
  async flush (): Promise<void> {
    for (let chain = this.chain; ; chain = this.chain) {
      await chain
      await this.dev.idle()
      if (chain === this.chain) return
    }
  }

  /** Finish queued writes, write a checkpoint (fast next open), release the device. */
  async close (): Promise<void> {
    if (this.closed || this.closing) return
    this.closing = true
    try {
      await this.exclusive(async () => {
        if (this.checkpointer.due() || (!this.checkpointer.disabled && this.log.cpRecords > 0)) await this.checkpoint()
      }, false)
    } catch (err) {
      this.logger.warn('no checkpoint at close', { err })
    }
    await this.dev.idle()
    this.closed = true
    await this.flash.close()
  }

  // ---- writing -----------------------------------------------------------------------

  /**
   * One writer at a time, in arrival order; a bounded queue (each waiting put
   * holds its bytes). `prepare` runs once the task before this one has
   * started, and its result is handed to fn.
   */
  private exclusive<T, P = undefined> (fn: (prepared: P) => Promise<T>, isMutation: boolean, prepare?: () => P): Promise<T> {
    if (this.closed || (this.closing && isMutation)) return Promise.reject(closedError())
    if (this.broken !== null) return Promise.reject(this.broken)
    if (this.pending >= CACHE_PENDING_WRITES_MAX) return Promise.reject(new CanopyError('LIMIT_REACHED', `${CACHE_PENDING_WRITES_MAX} cache writes are already waiting`))
    this.pending++
    const ready = this.started.then(prepare) as Promise<P>
    ready.catch(noop) // handled by fn, later
    let start = noop
    this.started = new Promise<void>((resolve) => { start = resolve })
    const run = async (): Promise<T> => {
      start()
      try {
        if (this.broken !== null) throw this.broken
        return await fn(await ready)
      } catch (err) {
        if (fatal(err)) this.break(err)
        throw err
      } finally {
        // Group commit: a sync starts for whoever waits, unless one is under way (then the next starts when it ends).
        if (this.dev.waiting > 0) this.dev.kick()
        this.pending--
        if (isMutation) this.scheduleMaintenance()
      }
    }
    const p = this.chain.then(run, run)
    this.chain = p.catch(noop)
    return p
  }

  /** Resolves once what was written so far is durable (the put's acknowledgement); `undo` runs if that sync fails. */
  private durable (undo?: () => void): Promise<void> {
    const p = this.options.unsafeSkipAckSync === true ? Promise.resolve() : this.dev.synced(undo)
    p.catch(noop) // awaited by put once its write task returned
    return p
  }

  /** Stop writing for good (power lost, device closed, our own bug); nobody waits for a sync any more. */
  private break (err: unknown): void {
    this.broken ??= CanopyError.from(err, 'ASSERTION')
    this.dev.abandon(this.broken)
  }

  /** Keep the bounds by evicting least recently used, unpinned pieces (in memory: see FORMAT.md, "Evictions"). */
  private async makeRoom (recordBytes: number, length: number): Promise<void> {
    const bound = this.boundBytes()
    if (length > bound) throw new CanopyError('CACHE_FULL', `a piece of ${length} bytes is larger than the cache's bound (${bound})`)
    while (this.state.bytes + length > bound || this.state.index.size >= this.options.piecesMax) {
      if (!this.evictOne()) throw new CanopyError('CACHE_FULL', 'cannot make room: every stored piece is pinned')
    }
    await this.roomOnFlash(recordBytes)
  }

  /** Compact (and, when no segment is worth it, evict) until the log can take `recordBytes`. */
  private async roomOnFlash (recordBytes: number): Promise<void> {
    for (let rounds = 0; !this.log.fits(recordBytes);) {
      if (rounds < CACHE_COMPACTION_ROUNDS_MAX && await this.compactor.once(recordBytes)) { rounds++; continue }
      if (!this.evictOne()) throw new CanopyError('CACHE_FULL', 'no room left on the flash (bad blocks, or everything is pinned)')
    }
  }

  private evictOne (): boolean {
    for (const key of this.state.index.keys()) {
      if (this.pins.has(key)) continue
      this.state.removePiece(key)
      this.counters.evictions++
      this.options.onEvict?.(key)
      return true
    }
    return false
  }

  /** Effective bound: the configured one, lowered when retired blocks shrink the flash. */
  private boundBytes (): number {
    const s = this.state
    return Math.min(this.options.bytesMax, Math.floor(capacityBytes(s.count('free') + s.count('open') + s.count('sealed'), this.log.usableBytes) * CACHE_FILL_RATIO_MAX))
  }

  private enforceBounds (): void {
    const bound = this.boundBytes()
    while ((this.state.bytes > bound || this.state.index.size > this.options.piecesMax) && this.evictOne());
  }

  private assertBounds (): void {
    assert(this.state.index.size <= this.options.piecesMax && this.state.bytes <= this.boundBytes() + this.pieceBytesMax, 'stored pieces and bytes within their bounds (bytes: plus one piece)')
  }

  /**
   * A tombstone cancels every copy of the piece up to its newest; durable on
   * return. Memory forgets the piece before the tombstone is even attempted:
   * a program that "failed" (its read-back did not match) or a sync that
   * failed may still have left the tombstone on flash, and a later sync makes
   * it durable. So the piece must not be counted on once a delete was tried
   * (the delete is not acknowledged; a later put writes a new copy after it).
   */
  private async writeTombstone (key: string): Promise<boolean> {
    await this.roomOnFlash(this.state.extraBytes)
    const loc = this.state.index.get(key)
    const { seq, offset } = loc !== undefined ? this.state.lastPosition(loc) : this.log.position()
    const had = this.state.removePiece(key) !== undefined
    const placed = await this.log.append({ type: RecordType.tombstone, key: Buffer.from(key, 'hex'), a: seq, b: offset }, Buffer.alloc(0))
    this.state.addExtra({ type: RecordType.tombstone, block: placed.block, offset: placed.offset, key, a: seq, b: offset })
    await this.log.sync()
    return had
  }

  /** A reader found a piece damaged: forget it now, tombstone it so the next open does not bring it back. */
  private async dropCorrupt (key: string, loc: PieceLoc): Promise<void> {
    await this.exclusive(async () => {
      if (this.state.index.get(key) !== loc) return // moved (and checked) or gone meanwhile
      this.counters.corruptDropped++
      this.logger.warn('damaged piece dropped', { hash: key, block: loc.block })
      try {
        await this.writeTombstone(key)
      } catch (err) {
        if (fatal(err)) throw err
        this.state.removePiece(key) // not served either way; it is found again (and dropped) after a restart
      }
    }, true).catch((err: unknown) => { this.noteBackgroundError(err) })
  }

  // ---- maintenance: obituaries, tombstone pressure, checkpoints -----------------------

  /** Dead blocks whose obituary is not on flash (found at open, or a burial that failed half way). */
  private orphans (): number[] {
    const s = this.state
    return s.count('dead') === 0 ? [] : s.blocks.flatMap((b, i) => b.state === 'dead' && !s.deadByBlock.has(i) ? [i] : [])
  }

  /** Tombstones live while older segments do; compacting the oldest lets them go. */
  private tombPressure (): boolean { return this.state.tombs > Math.max(64, this.options.piecesMax) }

  private scheduleMaintenance (): void {
    if (this.maintenanceQueued || this.closing || this.closed || this.broken !== null) return
    if (this.orphans().length === 0 && !this.tombPressure() && !this.checkpointer.due()) return
    this.maintenanceQueued = true
    this.exclusive(async () => {
      this.maintenanceQueued = false
      for (const b of this.orphans()) await this.compactor.bury(b)
      const oldest = this.tombPressure() ? this.state.sealed('seq') : null
      if (oldest !== null) await this.compactor.compact(oldest)
      if (this.checkpointer.due()) await this.checkpoint()
    }, false).catch((err: unknown) => {
      this.maintenanceQueued = false
      this.noteBackgroundError(err)
    })
  }

  private async checkpoint (): Promise<void> {
    const s = this.state
    const needed = this.checkpointer.blocksNeeded(checkpointBytesFor(s.index.size, s.tombs, s.deadByBlock.size)) + CACHE_RESERVE_BLOCKS
    for (let rounds = 0; s.count('free') < needed && rounds < CACHE_COMPACTION_ROUNDS_MAX && await this.compactor.once(this.log.usableBytes / 8); rounds++);
    if (s.count('free') < needed - 1) this.checkpointer.failed++
    else await this.checkpointer.write(encodeCheckpoint(this.checkpointer.snapshot(this.lifetime())))
  }

  /** Lifetime counters: the store's, and the device's on top of what they were at open. */
  private lifetime (): CheckpointCounters {
    const d = this.dev.counters
    return { ...this.counters, bytesProgrammed: this.base.bytesProgrammed + d.bytesProgrammed, erases: this.base.erases + d.erases }
  }

  private noteBackgroundError (err: unknown): void {
    if (CanopyError.is(err, 'CLOSED')) return
    this.backgroundErrors++
    this.logger.warn('flash cache background write failed', { err })
  }

  private assertOpen (): void {
    if (this.closed) throw closedError()
  }
}
