// The append end of the log: one open segment at a time, records programmed
// (and read back) one after another, a fresh erased block when the open one is
// full. Two rules make recovery cheap and safe:
//
//  * nothing is durable until sync(): callers sync before they acknowledge and
//    before they erase anything a record was copied out of (recovery checks
//    every replayed record to its commit CRC, so unsynced records anywhere in
//    the tail are found, not trusted);
//  * a failed program leaves the rest of a block unknown: the block is sealed
//    and nothing more is appended to it (and it is retired if it is bad).

import { assert, CanopyError } from '../errors'
import { CACHE_ALLOCATE_ATTEMPTS_MAX, CACHE_RESERVE_BLOCKS, CACHE_SEQ_RESERVE_COUNT, CACHE_SLOT_BLOCKS } from '../limits'
import { isBadBlock, isFatalWrite, type CacheDevice } from './device'
import { alignUp, allocRecord, encodeSegmentHeader, PART_FIRST, PART_SECOND, PART_WHOLE, RECORD_HEADER_BYTES, RECORD_TRAILER_BYTES, recordBytesFor, SEGMENT_HEADER_BYTES, stampRecord, TYPE_PIECE, type RecordFields } from './format'
import { splitLoc, wholeLoc, type CacheState, type PieceLoc } from './state'

export interface Placed { block: number, offset: number, recordBytes: number, seq: number }

export type RecordSpec = Omit<RecordFields, 'seq' | 'offset'>

export interface LogWriter {
  /** Bytes a segment holds after its header. */
  readonly usableBytes: number
  /** The next segment number to use. */
  nextSeq: number
  /** Segment numbers below this are durably reserved (see checkpoint.ts). */
  reservedUntil: number
  /** Records and bytes appended since the last checkpoint. */
  cpRecords: number
  cpBytes: number
  /** Blocks found bad this session (failed program/erase or read-back). */
  badBlocksFound: number
  /** Pieces written in two parts across a block boundary this session. */
  splitPieces: number
  /** Where the next record would start: (seq, offset), for tombstones and checkpoints. */
  position (): { seq: number, offset: number }
  /** Can `recordBytes` be appended without touching the compaction reserve? */
  fits (recordBytes: number): boolean
  /** Append one record. `built` is a record buffer from allocRecord already holding the body (saves a copy). */
  append (spec: RecordSpec, body: Uint8Array, useReserve?: boolean, built?: Buffer): Promise<Placed>
  /**
   * A piece: one record when it fits the open segment; otherwise, when the
   * rest of the segment is worth it, two parts back to back (the first fills
   * the segment, the second opens the next), so power-of-two pieces do not
   * leave most of a power-of-two block unused.
   */
  appendPiece (key: Buffer, body: Uint8Array, useReserve?: boolean, built?: Buffer): Promise<PieceLoc>
  /** Make everything written so far durable. A failed sync seals the open block (the store's onSyncError): its tail is no longer known. */
  sync (): Promise<void>
  seal (block: number): void
  /** A program or erase failed here: the block is not used again once it is empty. */
  retire (block: number): void
}

/** Thrown when no erased block is left outside the reserve: the caller compacts or evicts. */
const noFreeBlock = (): CanopyError => new CanopyError('CACHE_FULL', 'no erased block')

/** @param reserve writes an anchor reserving segment numbers below `until` (the checkpointer's) */
export function createLog (dev: CacheDevice, state: CacheState, nextSeq: number, reservedUntil: number, reserve: (until: number) => Promise<void>): LogWriter {
  const { programBytes, blockBytes } = dev.geometry
  const headerBytes = alignUp(SEGMENT_HEADER_BYTES, programBytes)
  const usableBytes = blockBytes - headerBytes
  // The smallest first part worth splitting a piece for: a smaller end of a block stays unused.
  const splitBytesMin = Math.max(programBytes, Math.floor(usableBytes / 16))
  const blocks = state.blocks
  let cursor = CACHE_SLOT_BLOCKS

  const room = (): number => state.openBlock === null ? 0 : blockBytes - blocks[state.openBlock]!.end
  const seal = (block: number): void => { if (blocks[block]!.state === 'open') state.setState(block, 'sealed') }
  const retire = (block: number): void => {
    if (!blocks[block]!.retired) log.badBlocksFound++
    blocks[block]!.retired = true
  }

  /** Round robin over free blocks: erases spread over the whole device (wear levelling without counters). */
  const pickFree = (useReserve: boolean): number => {
    const n = blocks.length
    if (state.count('free') > (useReserve ? 0 : CACHE_RESERVE_BLOCKS)) {
      for (let i = 0; i < n; i++) {
        const b = (cursor + i) % n
        if (blocks[b]!.state === 'free') {
          cursor = b + 1
          return b
        }
      }
    }
    throw noFreeBlock()
  }

  const openNew = async (useReserve: boolean): Promise<number> => {
    if (state.openBlock !== null) seal(state.openBlock)
    // Reserve first: a segment number must be durably reserved before any block carries it.
    if (log.nextSeq + CACHE_ALLOCATE_ATTEMPTS_MAX >= log.reservedUntil) await reserve(log.nextSeq + CACHE_ALLOCATE_ATTEMPTS_MAX + CACHE_SEQ_RESERVE_COUNT)
    for (let attempt = 0; attempt < CACHE_ALLOCATE_ATTEMPTS_MAX; attempt++) {
      const block = pickFree(useReserve)
      const info = blocks[block]!
      info.generation++
      try {
        await dev.erase(block)
        const seq = log.nextSeq++
        await dev.program(block, 0, encodeSegmentHeader(seq, block, blockBytes, programBytes))
        info.seq = seq
        info.end = headerBytes
        info.cpParts = 0
        assert(info.live === 0 && info.pieces === 0 && info.extras.size === 0, 'a new segment starts empty')
        state.setState(block, 'open')
        return block
      } catch (err) {
        if (!isBadBlock(err)) throw err
        state.setState(block, 'bad')
        retire(block)
      }
    }
    throw new CanopyError('CACHE_FULL', `no good block in ${CACHE_ALLOCATE_ATTEMPTS_MAX} tries`)
  }

  const append = async (spec: RecordSpec, body: Uint8Array, useReserve = false, built?: Buffer): Promise<Placed> => {
    const size = recordBytesFor(body.length, programBytes)
    assert(size <= usableBytes, 'a record fits an empty segment')
    const record = built ?? allocRecord(body, programBytes)
    for (let attempt = 0; attempt < CACHE_ALLOCATE_ATTEMPTS_MAX; attempt++) {
      const block = size <= room() ? state.openBlock! : await openNew(useReserve)
      const info = blocks[block]!
      const offset = info.end
      stampRecord(record, { ...spec, seq: info.seq, offset }, body.length)
      try {
        await dev.program(block, offset, record)
      } catch (err) {
        // The block's tail is unknown now: seal it; a bad block is also retired.
        if (isFatalWrite(err)) throw err
        seal(block)
        if (!isBadBlock(err)) throw err
        retire(block)
        continue
      }
      info.end += size
      log.cpRecords++
      log.cpBytes += size
      return { block, offset, recordBytes: size, seq: info.seq }
    }
    throw new CanopyError('CACHE_FULL', `record not placed in ${CACHE_ALLOCATE_ATTEMPTS_MAX} tries`)
  }

  const log: LogWriter = {
    usableBytes,
    nextSeq,
    reservedUntil,
    cpRecords: 0,
    cpBytes: 0,
    badBlocksFound: 0,
    splitPieces: 0,
    position () {
      const open = state.openBlock
      return open === null ? { seq: log.nextSeq - 1, offset: blockBytes } : { seq: blocks[open]!.seq, offset: blocks[open]!.end }
    },
    fits: (recordBytes) => recordBytes <= room() || state.count('free') > CACHE_RESERVE_BLOCKS,
    append,
    async appendPiece (key, body, useReserve = false, built) {
      const first = room() - RECORD_HEADER_BYTES - RECORD_TRAILER_BYTES
      const spec = (b: number): RecordSpec => ({ type: TYPE_PIECE, key, a: body.length, b })
      const whole = async (): Promise<PieceLoc> => {
        const p = await append(spec(PART_WHOLE), body, useReserve, built)
        return wholeLoc({ block: p.block, offset: p.offset, length: body.length })
      }
      if (recordBytesFor(body.length, programBytes) <= room() || first < splitBytesMin || first >= body.length) return await whole()
      const a = await append(spec(PART_FIRST), body.subarray(0, first), useReserve)
      // A failed program moved the first part to a fresh segment: no boundary to span any more. That
      // first part stays behind as dead bytes (replay drops a first part not followed by its second).
      if (a.offset + a.recordBytes !== blockBytes) return await whole()
      const b = await append(spec(PART_SECOND), body.subarray(first), useReserve)
      log.splitPieces++
      return splitLoc({ block: a.block, offset: a.offset, length: first }, { block: b.block, offset: b.offset, length: body.length - first })
    },
    async sync () { if (dev.dirty) await dev.sync() },
    seal,
    retire
  }
  return log
}
