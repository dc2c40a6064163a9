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
import { createWriteBudget, type WriteBudgetStatus } from './budget'
import { createCheckpointer, type Checkpointer } from './checkpoint'
import { createCompactor } from './compact'
import { crc32Native } from './crc32'
import { createDevice } from './device'
import { alignUp, allocRecord, ANCHOR_FIXED_BYTES, ANCHOR_PART_BYTES, bodyBytesMax, checkpointBytesFor, encodeCheckpoint, hex, keyBytes, RECORD_HEADER_BYTES, recordBytesFor, SEGMENT_HEADER_BYTES, sha256, TYPE_TOMBSTONE, type CheckpointCounters } from './format'
import { pieceKey, type PieceHash } from './key'
import { createLog, type LogWriter } from './log'
import { createReader, type VerifyReads } from './reader'
import { recover, type RecoveryReport } from './recover'
import type { PieceLoc } from './state'

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

/** The store (open one with FlashCache.open). */
export interface FlashCache {
  /** The largest piece this flash takes: an erase block less the segment and record headers. */
  readonly pieceBytesMax: number
  /** How the last open went. */
  readonly recovery: RecoveryReport & { ms: number }
  /** How gets check pieces here (see FlashCacheOptions.verifyReads). */
  readonly verifyReads: VerifyReads
  /**
   * Store a piece; resolves once it is durable. Rejects (and stores nothing)
   * when the bytes do not hash to `hash`. Like fs.write, the caller must not
   * change `bytes` until the promise settles (a changed buffer is refused).
   * With `{ sync: false }` it resolves once written but not yet durable: the
   * next durable put, delete or sync() makes it so (records fetched again
   * from peers need no fsync each).
   */
  put (hash: PieceHash, bytes: Uint8Array, options?: { sync?: boolean }): Promise<void>
  /** Make every put so far durable. */
  sync (): Promise<void>
  /** The piece's bytes, verified; undefined when absent or found damaged (then dropped). */
  get (hash: PieceHash): Promise<Buffer | undefined>
  /** A verified piece as a stream of chunks (bytes [start, end)), for large pieces. */
  readStream (hash: PieceHash, range?: { start?: number, end?: number }): Promise<Readable | undefined>
  has (hash: PieceHash): boolean
  /** Size of a stored piece, or undefined. */
  sizeOf (hash: PieceHash): number | undefined
  /** Remove a piece for good (durable when it resolves); true when it was stored. */
  delete (hash: PieceHash): Promise<boolean>
  /** Keep a piece from eviction (counted: pin twice, unpin twice). The piece need not be stored yet. */
  pin (hash: PieceHash): void
  unpin (hash: PieceHash): void
  /** Stored piece hashes, least recently used first (a snapshot: reading pieces reorders the live index). */
  hashes (): string[]
  stats (): FlashCacheStats
  /** Resolves once every queued write, and the background work they started (syncs too), has finished. */
  flush (): Promise<void>
  /** Finish queued writes, write a checkpoint (fast next open), release the device. */
  close (): Promise<void>
}

export const FlashCache = {
  /** Open (and recover) the cache on a flash device. */
  async open (flash: Flash, options: FlashCacheOptions): Promise<FlashCache> {
    const g = flash.geometry
    const { blockBytes, programBytes } = g
    const blocksMin = CACHE_SLOT_BLOCKS + CACHE_RESERVE_BLOCKS + 3
    if (blockBytes < CACHE_BLOCK_BYTES_MIN || alignUp(SEGMENT_HEADER_BYTES, programBytes) + 2 * recordBytesFor(0, programBytes) > blockBytes / 4 || g.blockCount < blocksMin) {
      throw new CanopyError('CONFIG_INVALID', `flash ${JSON.stringify(g)} too small (need ${blocksMin} blocks of ${CACHE_BLOCK_BYTES_MIN}+ bytes)`)
    }
    const { piecesMax, clock } = options
    if (!Number.isInteger(piecesMax) || piecesMax < 1 || piecesMax > CACHE_PIECE_COUNT_MAX) {
      throw new CanopyError('CONFIG_INVALID', `piecesMax must be 1..${CACHE_PIECE_COUNT_MAX}`)
    }
    const partsMax = Math.min(CACHE_CHECKPOINT_PARTS_MAX, Math.floor((blockBytes / 2 - ANCHOR_FIXED_BYTES - 4) / ANCHOR_PART_BYTES))
    const budget = createWriteBudget(clock, options.writeBudgetBytesPerDay)
    const dev = createDevice(flash, budget, options.verifyPrograms ?? !FileFlash.is(flash), (err) => {
      // A sync failed: the open block's tail is no longer known; power lost or the device closed: stop.
      if (state.openBlock !== null) log.seal(state.openBlock)
      if (fatal(err)) halt(err)
    })
    const t0 = clock.nowMs()
    const r = await recover(dev, partsMax)
    const recovery = { ...r.report, ms: clock.nowMs() - t0 }
    const state = r.state
    const index = state.index
    const logger = options.log ?? silentLogger
    const pins = new Map<string, number>()
    /** Lifetime counters; bytes programmed and erases as of open (this session's come from the device). */
    const counters = { ...r.counters }
    const log: LogWriter = createLog(dev, state, r.nextSeq, r.slots.reservedUntil, async (until) => await cp.reserve(until))
    log.cpRecords = r.report.replayedRecords
    log.cpBytes = r.replayedBytes
    const cp: Checkpointer = createCheckpointer(dev, state, log, partsMax, options.checkpointIntervalBytesMin ?? 4 * blockBytes, r.slots, r.checkpoint, r.report.readErrors > 0)
    const compactor = createCompactor(dev, state, log,
      (key) => { counters.corruptDropped++; logger.warn('damaged piece dropped', { hash: key }) },
      () => { cp.stale = true })
    const verifyReads: VerifyReads = options.verifyReads === 'sha256' || !crc32Native ? 'sha256' : 'crc32'
    const reader = createReader(dev, state, verifyReads === 'sha256', async (key, loc) => await dropCorrupt(key, loc))
    const pieceBytesMax = bodyBytesMax(blockBytes, programBytes)
    let chain: Promise<unknown> = Promise.resolve()
    /** Resolves once the newest queued write has started: the next put may copy and hash its bytes from then on. */
    let started: Promise<unknown> = Promise.resolve()
    let pending = 0
    let maintenanceQueued = false
    let backgroundErrors = 0
    let broken: CanopyError | null = null
    let closing = false
    let closed = false

    /** Stop writing for good (power lost, device closed, our own bug); nobody waits for a sync any more. */
    const halt = (err: unknown): void => {
      broken ??= CanopyError.from(err, 'ASSERTION')
      dev.abandon(broken)
    }

    /**
     * One writer at a time, in arrival order; a bounded queue (each waiting put
     * holds its bytes). `prepare` runs once the task before this one has
     * started, and its result is handed to fn.
     */
    const exclusive = <T, P = undefined>(fn: (prepared: P) => Promise<T>, isMutation: boolean, prepare?: () => P): Promise<T> => {
      if (closed || (closing && isMutation)) return Promise.reject(closedError())
      if (broken !== null) return Promise.reject(broken)
      if (pending >= CACHE_PENDING_WRITES_MAX) return Promise.reject(new CanopyError('LIMIT_REACHED', `${CACHE_PENDING_WRITES_MAX} cache writes waiting`))
      pending++
      const ready = started.then(prepare) as Promise<P>
      ready.catch(noop) // handled by fn, later
      let start = noop
      started = new Promise<void>((resolve) => { start = resolve })
      const run = async (): Promise<T> => {
        start()
        try {
          if (broken !== null) throw broken
          return await fn(await ready)
        } catch (err) {
          if (fatal(err)) halt(err)
          throw err
        } finally {
          // Group commit: a sync starts for whoever waits, unless one is under way (then the next starts when it ends).
          if (dev.waiting > 0) dev.kick()
          pending--
          if (isMutation) scheduleMaintenance()
        }
      }
      const p = chain.then(run, run)
      chain = p.catch(noop)
      return p
    }

    /** Resolves once what was written so far is durable (the put's acknowledgement); `undo` runs if that sync fails. */
    const durable = (undo?: () => void): Promise<void> => {
      const p = options.unsafeSkipAckSync === true ? Promise.resolve() : dev.synced(undo)
      p.catch(noop) // awaited by put once its write task returned
      return p
    }

    /** Effective bound: the configured one, lowered when retired blocks shrink the flash. */
    const boundBytes = (): number =>
      Math.min(options.bytesMax, Math.floor(capacityBytes(state.count('free') + state.count('open') + state.count('sealed'), log.usableBytes) * CACHE_FILL_RATIO_MAX))

    /** Evict the least recently used unpinned piece (in memory only: see FORMAT.md, "Evictions"). */
    const evictOne = (): boolean => {
      for (const key of index.keys()) {
        if (pins.has(key)) continue
        state.removePiece(key)
        counters.evictions++
        options.onEvict?.(key)
        return true
      }
      return false
    }

    /** Evict until `bytes` more in `pieces` more fit the bounds; false when everything left is pinned. */
    const makeRoom = (bytes: number, pieces: number): boolean => {
      const bound = boundBytes()
      while (state.bytes + bytes > bound || index.size + pieces > piecesMax) if (!evictOne()) return false
      return true
    }

    /** Compact (and, when no segment is worth it, evict) until the log can take `recordBytes`. */
    const roomOnFlash = async (recordBytes: number): Promise<void> => {
      for (let rounds = 0; !log.fits(recordBytes);) {
        if (rounds < CACHE_COMPACTION_ROUNDS_MAX && await compactor.once(recordBytes)) { rounds++; continue }
        if (!evictOne()) throw new CanopyError('CACHE_FULL', 'flash full (bad blocks, or all pinned)')
      }
    }

    /**
     * A tombstone cancels every copy of the piece up to its newest; durable on
     * return. Memory forgets the piece before the tombstone is even attempted:
     * a program that "failed" (its read-back did not match) or a sync that
     * failed may still have left the tombstone on flash, and a later sync makes
     * it durable. So the piece must not be counted on once a delete was tried
     * (the delete is not acknowledged; a later put writes a new copy after it).
     */
    const writeTombstone = async (key: string): Promise<boolean> => {
      await roomOnFlash(state.extraBytes)
      const loc = index.get(key)
      const { seq, offset } = loc !== undefined ? state.lastPosition(loc) : log.position()
      const had = state.removePiece(key) !== undefined
      const placed = await log.append({ type: TYPE_TOMBSTONE, key: keyBytes(key), a: seq, b: offset }, Buffer.alloc(0))
      state.addExtra(TYPE_TOMBSTONE, placed.block, placed.offset, seq, offset, key)
      await log.sync()
      return had
    }

    const noteBackgroundError = (err: unknown): void => {
      if (CanopyError.is(err, 'CLOSED')) return
      backgroundErrors++
      logger.warn('background write failed', { err })
    }

    /** A reader found a piece damaged: forget it now, tombstone it so the next open does not bring it back. */
    const dropCorrupt = async (key: string, loc: PieceLoc): Promise<void> => {
      await exclusive(async () => {
        if (index.get(key) !== loc) return // moved (and checked) or gone meanwhile
        counters.corruptDropped++
        logger.warn('damaged piece dropped', { hash: key, block: loc.block })
        try {
          await writeTombstone(key)
        } catch (err) {
          if (fatal(err)) throw err
          state.removePiece(key) // not served either way; it is found again (and dropped) after a restart
        }
      }, true).catch(noteBackgroundError)
    }

    /** Lifetime counters: the store's, and the device's on top of what they were at open. */
    const lifetime = (): CheckpointCounters => {
      const d = dev.counters
      return { ...counters, bytesProgrammed: counters.bytesProgrammed + d.bytesProgrammed, erases: counters.erases + d.erases }
    }

    const checkpoint = async (): Promise<void> => {
      const needed = cp.blocksNeeded(checkpointBytesFor(index.size, state.tombs, state.deadByBlock.size)) + CACHE_RESERVE_BLOCKS
      for (let rounds = 0; state.count('free') < needed && rounds < CACHE_COMPACTION_ROUNDS_MAX && await compactor.once(log.usableBytes / 8); rounds++);
      if (state.count('free') < needed - 1) cp.failed++
      else await cp.write(encodeCheckpoint(cp.snapshot(lifetime())))
    }

    // ---- maintenance: obituaries, tombstone pressure, checkpoints -----------------------

    /** Dead blocks whose obituary is not on flash (found at open, or a burial that failed half way). */
    const orphans = (): number[] => state.count('dead') === 0 ? [] : state.blocks.flatMap((b, i) => b.state === 'dead' && !state.deadByBlock.has(i) ? [i] : [])
    /** Tombstones live while older segments do; compacting the oldest lets them go. */
    const tombPressure = (): boolean => state.tombs > Math.max(64, piecesMax)

    const scheduleMaintenance = (): void => {
      if (maintenanceQueued || closing || closed || broken !== null || (orphans().length === 0 && !tombPressure() && !cp.due())) return
      maintenanceQueued = true
      exclusive(async () => {
        maintenanceQueued = false
        for (const b of orphans()) await compactor.bury(b)
        const oldest = tombPressure() ? state.sealed('seq') : null
        if (oldest !== null) await compactor.compact(oldest)
        if (cp.due()) await checkpoint()
      }, false).catch((err: unknown) => {
        maintenanceQueued = false
        noteBackgroundError(err)
      })
    }

    const open = (hash: PieceHash): string => {
      if (closed) throw closedError()
      return pieceKey(hash)
    }

    // Open: keep the bounds, say how it went, start what is due.
    makeRoom(0, 0)
    logger.info('flash cache open', { pieces: index.size, bytes: state.bytes, recovery })
    if (r.report.readErrors > 0) logger.warn('no checkpoints until reopened (read errors)', { readErrors: r.report.readErrors })
    scheduleMaintenance()

    return {
      pieceBytesMax,
      recovery,
      verifyReads,

      async put (hash, bytes, putOptions) {
        const key = pieceKey(hash)
        if (!(bytes instanceof Uint8Array)) throw new CanopyError('INPUT_INVALID', 'a piece is bytes')
        const n = bytes.length
        if (n > pieceBytesMax) throw new CanopyError('CACHE_PIECE_TOO_LARGE', `piece of ${n} bytes; at most ${pieceBytesMax}`)
        const { ack } = await exclusive(async (record) => {
          if (index.has(key)) {
            // Already stored, if the stored copy still verifies; a rotten copy must not turn this put into a false acknowledgement.
            if (await reader.check(key)) { state.touch(key); return { ack: durable() } }
            if (index.has(key)) {
              counters.corruptDropped++
              await writeTombstone(key)
            }
          }
          const bound = boundBytes()
          if (n > bound) throw new CanopyError('CACHE_FULL', `piece of ${n} bytes; bound ${bound}`)
          if (!makeRoom(n, 1)) throw new CanopyError('CACHE_FULL', 'no room: all pieces pinned')
          await roomOnFlash(record.length)
          const loc = await log.appendPiece(keyBytes(key), record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + n), false, record)
          state.addPiece(key, loc)
          counters.bytesAccepted += n
          assert(index.size <= piecesMax && state.bytes <= boundBytes() + pieceBytesMax, 'pieces and bytes within bounds')
          // A sync that fails takes the piece back out: it was never acknowledged, and it may not be on flash.
          if (putOptions?.sync === false) return { ack: Promise.resolve() }
          return { ack: durable(() => { if (index.get(key) === loc) { state.removePiece(key); counters.bytesAccepted -= n } }) }
        }, true, () => {
          // Our own copy, straight into the record buffer, hashed at once: what is hashed is what is written.
          const record = allocRecord(bytes, programBytes)
          if (hex(sha256(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + n))) !== key) throw new CanopyError('CACHE_HASH_MISMATCH', `bytes do not hash to ${key}`)
          return record
        })
        await ack
      },
      get: async (hash) => await reader.get(open(hash)),
      readStream: async (hash, range) => await reader.stream(open(hash), range),
      has: (hash) => index.has(pieceKey(hash)),
      sizeOf: (hash) => index.get(pieceKey(hash))?.length,
      async delete (hash) {
        const key = pieceKey(hash)
        return await exclusive(async () => await writeTombstone(key), true)
      },
      pin (hash) {
        const key = pieceKey(hash)
        const n = pins.get(key) ?? 0
        if (n === 0 && pins.size >= CACHE_PIN_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', `at most ${CACHE_PIN_COUNT_MAX} pins`)
        pins.set(key, n + 1)
      },
      unpin (hash) {
        const key = pieceKey(hash)
        const n = pins.get(key) ?? 0
        if (n > 1) pins.set(key, n - 1)
        else pins.delete(key)
      },
      hashes: () => [...index.keys()],
      stats () {
        const c = lifetime()
        const bytesMax = boundBytes()
        return {
          pieces: index.size,
          bytes: state.bytes,
          bytesMax,
          piecesMax,
          freeBytes: Math.max(0, bytesMax - state.bytes),
          pieceBytesMax,
          pinned: pins.size,
          evictions: c.evictions,
          corruptDropped: c.corruptDropped,
          reads: reader.reads,
          readErrors: dev.counters.readErrors,
          tombstones: state.tombs,
          verifyReads,
          flash: { blockBytes, blockCount: g.blockCount, freeBlocks: state.count('free'), badBlocks: log.badBlocksFound, deadBlocks: state.count('dead'), unreadableBlocks: state.count('unknown') },
          writes: {
            bytesProgrammed: c.bytesProgrammed,
            erases: c.erases,
            syncs: dev.counters.syncs,
            bytesAccepted: c.bytesAccepted,
            amplification: c.bytesAccepted > 0 ? c.bytesProgrammed / c.bytesAccepted : 0,
            splitPieces: log.splitPieces,
            budget: budget.status()
          },
          compactions: compactor.compactions,
          checkpoints: { written: cp.written, failed: cp.failed, revision: cp.revision },
          recovery,
          backgroundErrors
        }
      },
      async sync () {
        await exclusive(async () => { await dev.sync() }, false)
      },
      async flush () {
        for (let c = chain; ; c = chain) {
          await c
          await dev.idle()
          if (c === chain) return
        }
      },
      async close () {
        if (closed || closing) return
        closing = true
        try {
          await exclusive(async () => { if (cp.due(true)) await checkpoint() }, false)
        } catch (err) {
          logger.warn('no checkpoint at close', { err })
        }
        await dev.idle()
        closed = true
        await flash.close()
      }
    }
  }
}
