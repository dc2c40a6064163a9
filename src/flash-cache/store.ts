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
//
// Guarantees: put resolves only once the piece is durable; get never returns
// bytes that do not hash to their name; stored bytes stay within the bound
// plus one piece; a failed write retires its block and the store goes on.

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
import { CacheDevice } from './device'
import { alignUp, allocRecord, ANCHOR_FIXED_BYTES, ANCHOR_PART_BYTES, bodyBytesMax, checkpointBytesFor, encodeCheckpoint, RECORD_HEADER_BYTES, recordBytesFor, RecordType, SEGMENT_HEADER_BYTES, sha256, type CheckpointCounters } from './format'
import { pieceKey, type PieceHash } from './key'
import { LogWriter } from './log'
import { PieceReader } from './reader'
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
   * Read every program back and compare (littlefs does). Default: on, except
   * on the Linux twin (FileFlash), where the page cache would answer the read.
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
  flash: { blockBytes: number, blockCount: number, freeBlocks: number, badBlocks: number, deadBlocks: number, unreadableBlocks: number }
  writes: { bytesProgrammed: number, erases: number, syncs: number, bytesAccepted: number, amplification: number, splitPieces: number, budget: WriteBudgetStatus }
  compactions: number
  checkpoints: { written: number, failed: number, revision: number }
  recovery: RecoveryReport & { ms: number }
  backgroundErrors: number
}

/** Usable bytes for pieces on a flash of this geometry (before the fill ratio). */
export function flashCapacityBytes (blockBytes: number, blockCount: number, programBytes: number): number {
  const usable = blockBytes - alignUp(SEGMENT_HEADER_BYTES, programBytes)
  return Math.max(0, blockCount - CACHE_SLOT_BLOCKS - CACHE_RESERVE_BLOCKS - 1) * usable
}

/** Largest bytesMax a geometry supports. */
export const boundBytesMax = (blockBytes: number, blockCount: number, programBytes: number): number =>
  Math.floor(flashCapacityBytes(blockBytes, blockCount, programBytes) * CACHE_FILL_RATIO_MAX)

const fatal = (err: unknown): boolean =>
  !CanopyError.is(err) || ['FLASH_POWER_CUT', 'FLASH_CLOSED', 'FLASH_BAD_ADDRESS', 'ASSERTION'].includes(err.code)

export class FlashCache {
  readonly pieceBytesMax: number
  readonly recovery: RecoveryReport & { ms: number }
  private readonly state: CacheState
  private readonly dev: CacheDevice
  private readonly log: LogWriter
  private readonly compactor: Compactor
  private readonly checkpointer: Checkpointer
  private readonly reader: PieceReader
  private readonly budget: WriteBudget
  private readonly logger: Logger
  private readonly pins = new Map<string, number>()
  /** Dead blocks whose obituary is not on flash yet. */
  private readonly orphans: number[] = []
  private readonly counters: CheckpointCounters
  private readonly base: { bytesProgrammed: number, erases: number }
  private chain: Promise<unknown> = Promise.resolve()
  private pending = 0
  private maintenanceQueued = false
  private backgroundErrors = 0
  private broken: CanopyError | null = null
  private closing = false
  private closed = false

  private constructor (private readonly flash: Flash, private readonly options: FlashCacheOptions, dev: CacheDevice, budget: WriteBudget, r: Awaited<ReturnType<typeof recover>>, ms: number, partsMax: number) {
    this.dev = dev
    this.budget = budget
    this.logger = options.log ?? silentLogger
    this.state = r.state
    this.recovery = { ...r.report, ms }
    this.counters = { ...r.counters }
    this.base = { bytesProgrammed: r.counters.bytesProgrammed, erases: r.counters.erases }
    const g = flash.geometry
    this.pieceBytesMax = bodyBytesMax(g.blockBytes, g.programBytes)
    this.log = new LogWriter(dev, this.state, r.nextSeq)
    this.log.recordsSinceCheckpoint = r.recordsSinceCheckpoint
    this.log.bytesSinceCheckpoint = r.bytesSinceCheckpoint
    this.checkpointer = new Checkpointer(dev, this.state, this.log, partsMax, options.checkpointIntervalBytesMin ?? 4 * g.blockBytes,
      r.slots.activeSlot, r.slots.slotEnd, r.slots.revision)
    this.checkpointer.lastBytes = r.checkpointBytes
    this.checkpointer.current = r.checkpoint
    this.log.reservedUntil = r.slots.reservedUntil
    this.log.reserve = (until) => this.checkpointer.reserve(until)
    this.checkpointer.disabled = r.report.readErrors > 0
    this.compactor = new Compactor(dev, this.state, this.log, {
      onCorrupt: (key) => { this.counters.corruptDropped++; this.logger.warn('damaged piece dropped during compaction', { hash: key }) },
      checkpointLost: () => { this.checkpointer.stale = true }
    })
    this.reader = new PieceReader(dev, this.state, { corrupt: (key, loc) => this.dropCorrupt(key, loc) })
  }

  /** Open (and recover) the cache on a flash device. */
  static async open (flash: Flash, options: FlashCacheOptions): Promise<FlashCache> {
    const g = flash.geometry
    const smallest = alignUp(SEGMENT_HEADER_BYTES, g.programBytes) + 2 * recordBytesFor(0, g.programBytes)
    if (g.blockBytes < CACHE_BLOCK_BYTES_MIN || smallest > g.blockBytes / 4 || g.blockCount < CACHE_SLOT_BLOCKS + CACHE_RESERVE_BLOCKS + 3) {
      throw new CanopyError('CONFIG_INVALID', `flash geometry ${JSON.stringify(g)} is too small for the cache (blocks of at least ${CACHE_BLOCK_BYTES_MIN} bytes, at least ${CACHE_SLOT_BLOCKS + CACHE_RESERVE_BLOCKS + 3} blocks)`)
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
    if (r.orphanDead.length > 0 || cache.checkpointer.due()) cache.scheduleMaintenance()
    return cache
  }

  // ---- the API -----------------------------------------------------------------------

  /**
   * Store a piece; resolves once it is durable. Rejects (and stores nothing)
   * when the bytes do not hash to `hash`. Like fs.write, the caller must not
   * change `bytes` until the promise settles (a changed buffer is refused).
   * With `{ sync: false }` it resolves once written but not yet durable: the
   * next durable put, delete or sync() makes it so (records fetched again
   * from peers need no fsync each).
   */
  async put (hash: PieceHash, bytes: Uint8Array, options: { sync?: boolean } = {}): Promise<void> {
    const key = pieceKey(hash)
    if (!(bytes instanceof Uint8Array)) throw new CanopyError('INPUT_INVALID', 'a piece is bytes')
    if (bytes.length > this.pieceBytesMax) {
      throw new CanopyError('CACHE_PIECE_TOO_LARGE', `piece of ${bytes.length} bytes; this cache stores at most ${this.pieceBytesMax}`)
    }
    return await this.exclusive(async () => {
      // Our own copy, straight into the record buffer, hashed at once: what is hashed is what is written.
      const record = allocRecord(bytes, this.flash.geometry.programBytes)
      const body = record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + bytes.length)
      const keyBytes = sha256(body)
      if (keyBytes.toString('hex') !== key) throw new CanopyError('CACHE_HASH_MISMATCH', `bytes do not hash to ${key}`)
      if (this.state.index.has(key)) {
        // Already stored, if the stored copy still verifies; a rotten copy must not turn this put into a false acknowledgement.
        if (await this.reader.check(key) === 'ok') { this.state.touch(key); return }
        if (this.state.index.has(key)) {
          this.counters.corruptDropped++
          await this.writeTombstone(key)
        }
      }
      const size = record.length
      await this.makeRoom(size, body.length)
      const loc = await this.log.appendPiece(keyBytes, body, { built: record })
      if (this.options.unsafeSkipAckSync !== true && options.sync !== false) await this.log.sync()
      this.state.addPiece(key, loc)
      this.counters.bytesAccepted += body.length
      this.assertBounds()
    }, true)
  }

  /** The piece's bytes, verified against its hash; undefined when absent or found damaged (then dropped). */
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

  has (hash: PieceHash): boolean {
    return this.state.index.has(pieceKey(hash))
  }

  /** Size of a stored piece, or undefined. */
  sizeOf (hash: PieceHash): number | undefined {
    return this.state.index.get(pieceKey(hash))?.length
  }

  /** Remove a piece for good (durable when it resolves); true when it was stored. */
  async delete (hash: PieceHash): Promise<boolean> {
    const key = pieceKey(hash)
    return await this.exclusive(() => this.writeTombstone(key), true)
  }

  /** Keep a piece from eviction (counted: pin twice, unpin twice). The piece need not be stored yet. */
  pin (hash: PieceHash): void {
    const key = pieceKey(hash)
    const n = this.pins.get(key)
    if (n === undefined && this.pins.size >= CACHE_PIN_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', `at most ${CACHE_PIN_COUNT_MAX} pieces can be pinned`)
    this.pins.set(key, (n ?? 0) + 1)
  }

  unpin (hash: PieceHash): void {
    const key = pieceKey(hash)
    const n = this.pins.get(key)
    if (n === undefined) return
    if (n <= 1) this.pins.delete(key)
    else this.pins.set(key, n - 1)
  }

  isPinned (hash: PieceHash): boolean { return this.pins.has(pieceKey(hash)) }

  /** Stored piece hashes, least recently used first (a snapshot: reading pieces reorders the live index). */
  hashes (): string[] { return [...this.state.index.keys()] }

  stats (): FlashCacheStats {
    const s = this.state
    const g = this.flash.geometry
    const dc = this.dev.counters
    const programmed = this.base.bytesProgrammed + dc.bytesProgrammed
    const bytesMax = this.boundBytes()
    return {
      pieces: s.index.size,
      bytes: s.bytes,
      bytesMax,
      piecesMax: this.options.piecesMax,
      freeBytes: Math.max(0, bytesMax - s.bytes),
      pieceBytesMax: this.pieceBytesMax,
      pinned: this.pins.size,
      evictions: this.counters.evictions,
      corruptDropped: this.counters.corruptDropped,
      reads: this.reader.counters.reads,
      readErrors: dc.readErrors,
      tombstones: s.tombs,
      flash: {
        blockBytes: g.blockBytes,
        blockCount: g.blockCount,
        freeBlocks: s.count('free'),
        badBlocks: this.log.badBlocksFound,
        deadBlocks: s.count('dead'),
        unreadableBlocks: s.count('unknown')
      },
      writes: {
        bytesProgrammed: programmed,
        erases: this.base.erases + dc.erases,
        syncs: dc.syncs,
        bytesAccepted: this.counters.bytesAccepted,
        amplification: this.counters.bytesAccepted > 0 ? programmed / this.counters.bytesAccepted : 0,
        splitPieces: this.log.splitPieces,
        budget: this.budget.status()
      },
      compactions: this.compactor.compactions,
      checkpoints: { written: this.checkpointer.written, failed: this.checkpointer.failed, revision: this.checkpointer.revision },
      recovery: this.recovery,
      backgroundErrors: this.backgroundErrors
    }
  }

  /** Make every put so far durable. */
  async sync (): Promise<void> {
    await this.exclusive(() => this.log.sync(), false)
  }

  /** Resolves once every queued write, and the background work they started, has finished. */
  async flush (): Promise<void> {
    for (;;) {
      const chain = this.chain
      await chain
      if (chain === this.chain) return
    }
  }

  /** Finish queued writes, write a checkpoint (fast next open), release the device. */
  async close (): Promise<void> {
    if (this.closed || this.closing) return
    this.closing = true
    try {
      await this.exclusive(async () => {
        if (this.checkpointer.due() || (!this.checkpointer.disabled && this.log.recordsSinceCheckpoint > 0)) await this.checkpoint()
      }, false)
    } catch (err) {
      this.logger.warn('no checkpoint at close', { err })
    }
    this.closed = true
    await this.flash.close()
  }

  // ---- writing -----------------------------------------------------------------------

  /** One writer at a time, in arrival order; a bounded queue (each waiting put holds its bytes). */
  private exclusive<T> (fn: () => Promise<T>, isMutation: boolean): Promise<T> {
    if (this.closed || (this.closing && isMutation)) return Promise.reject(new CanopyError('CLOSED', 'the flash cache is closed'))
    if (this.broken !== null) return Promise.reject(this.broken)
    if (this.pending >= CACHE_PENDING_WRITES_MAX) return Promise.reject(new CanopyError('LIMIT_REACHED', `${CACHE_PENDING_WRITES_MAX} cache writes are already waiting`))
    this.pending++
    const run = async (): Promise<T> => {
      try {
        if (this.broken !== null) throw this.broken
        return await fn()
      } catch (err) {
        if (fatal(err)) this.broken ??= CanopyError.from(err, 'ASSERTION')
        throw err
      } finally {
        this.pending--
        if (isMutation) this.scheduleMaintenance()
      }
    }
    const p = this.chain.then(run, run)
    this.chain = p.catch(() => {})
    return p
  }

  /** Keep the bounds by evicting least recently used, unpinned pieces (in memory: see FORMAT.md, "Evictions"). */
  private async makeRoom (recordBytes: number, length: number): Promise<void> {
    const bound = this.boundBytes()
    if (length > bound) throw new CanopyError('CACHE_FULL', `a piece of ${length} bytes is larger than the cache's bound (${bound})`)
    while (this.state.bytes + length > bound || this.state.index.size + 1 > this.options.piecesMax) {
      if (!this.evictOne()) throw new CanopyError('CACHE_FULL', 'cannot make room: every stored piece is pinned')
    }
    await this.roomOnFlash(recordBytes)
  }

  /** Compact (and, when no segment is worth it, evict) until the log can take `recordBytes`. */
  private async roomOnFlash (recordBytes: number): Promise<void> {
    let rounds = 0
    while (!this.log.fits(recordBytes)) {
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
    const good = s.count('free') + s.count('open') + s.count('sealed')
    const capacity = Math.max(0, good - CACHE_RESERVE_BLOCKS - 1) * this.log.usableBytes
    return Math.min(this.options.bytesMax, Math.floor(capacity * CACHE_FILL_RATIO_MAX))
  }

  private enforceBounds (): void {
    const bound = this.boundBytes()
    while (this.state.bytes > bound || this.state.index.size > this.options.piecesMax) {
      if (!this.evictOne()) break
    }
  }

  private assertBounds (): void {
    assert(this.state.index.size <= this.options.piecesMax, 'piece count within its bound')
    assert(this.state.bytes <= this.boundBytes() + this.pieceBytesMax, 'stored bytes within the bound plus one piece')
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
    await this.roomOnFlash(this.log.recordBytes(0))
    const loc = this.state.index.get(key)
    const target = loc !== undefined ? this.state.lastPosition(loc) : this.log.position()
    const had = this.state.removePiece(key) !== undefined
    const placed = await this.log.append({ type: RecordType.tombstone, key: Buffer.from(key, 'hex'), a: target.seq, b: target.offset }, Buffer.alloc(0))
    this.state.addExtra({ kind: 'tomb', block: placed.block, offset: placed.offset, recordBytes: placed.recordBytes, key, targetSeq: target.seq, targetOffset: target.offset, deadBlock: 0 })
    await this.log.sync()
    return had
  }

  /** A reader found a piece damaged: forget it now, tombstone it so the next open does not bring it back. */
  private async dropCorrupt (key: string, loc: PieceLoc): Promise<void> {
    try {
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
      }, true)
    } catch (err) {
      this.noteBackgroundError(err)
    }
  }

  // ---- maintenance: obituaries, tombstone pressure, checkpoints -----------------------

  private scheduleMaintenance (): void {
    if (this.maintenanceQueued || this.closing || this.closed || this.broken !== null) return
    this.maintenanceQueued = true
    this.exclusive(async () => {
      this.maintenanceQueued = false
      await this.maintain()
    }, false).catch((err: unknown) => {
      this.maintenanceQueued = false
      this.noteBackgroundError(err)
    })
  }

  private async maintain (): Promise<void> {
    this.state.blocks.forEach((b, i) => { if (b.state === 'dead' && !this.state.deadByBlock.has(i)) this.orphans.push(i) })
    for (const b of this.orphans.splice(0)) await this.compactor.bury(b)
    // Tombstones live while older segments do; compacting the oldest lets them go.
    if (this.state.tombs > Math.max(64, this.options.piecesMax)) {
      const oldest = this.state.oldestSealed()
      if (oldest !== null) await this.compactor.compact(oldest)
    }
    if (this.checkpointer.due()) await this.checkpoint()
  }

  private async checkpoint (): Promise<void> {
    const estimate = checkpointBytesFor(this.state.index.size, this.state.tombs, this.state.deadByBlock.size)
    const needed = this.checkpointer.blocksNeeded(estimate)
    for (let rounds = 0; this.state.count('free') < needed + CACHE_RESERVE_BLOCKS && rounds < CACHE_COMPACTION_ROUNDS_MAX; rounds++) {
      if (!await this.compactor.once(this.log.usableBytes / 8)) break
    }
    if (this.state.count('free') < needed + CACHE_RESERVE_BLOCKS - 1) {
      this.checkpointer.failed++
      return
    }
    const blob = encodeCheckpoint(this.checkpointer.snapshot(this.lifetimeCounters()))
    await this.checkpointer.write(blob)
  }

  private lifetimeCounters (): CheckpointCounters {
    return {
      ...this.counters,
      bytesProgrammed: this.base.bytesProgrammed + this.dev.counters.bytesProgrammed,
      erases: this.base.erases + this.dev.counters.erases
    }
  }

  private noteBackgroundError (err: unknown): void {
    if (CanopyError.is(err, 'CLOSED')) return
    this.backgroundErrors++
    this.logger.warn('flash cache background write failed', { err })
  }

  private assertOpen (): void {
    if (this.closed) throw new CanopyError('CLOSED', 'the flash cache is closed')
  }
}
