// Open = recover. Read every block's segment header (no trusted free list: a
// block is in use exactly when it carries a valid header), take the newest
// checkpoint that reads back whole, then replay the log after it in order.
// Every replayed record is checked to its commit CRC, body included: a torn
// record left by an earlier power cut stays on flash after the segment stops
// being the newest, so "only the newest can be torn" is not enough. The tail
// after a checkpoint is bounded, so this costs little. A damaged record is
// stepped over by searching for the next valid header, and counted. Nothing
// here writes.

import { CanopyError } from '../errors'
import { CACHE_OPEN_READ_ATTEMPTS, CACHE_SEQ_SKIP_UNREADABLE, CACHE_SLOT_BLOCKS } from '../limits'
import { loadCheckpoint, scanSlots, type CurrentCheckpoint, type SlotScan } from './checkpoint'
import { isErased, type CacheDevice } from './device'
import { alignUp, COUNTER_FIELDS, decodeRecordHeader, decodeSegmentHeader, hex, NO_BLOCK, PART_FIRST, PART_SECOND, PART_WHOLE, RECORD_HEADER_BYTES, recordBytesFor, recordCommitted, SEGMENT_HEADER_BYTES, TYPE_OBITUARY, TYPE_PIECE, TYPE_TOMBSTONE, type Checkpoint, type CheckpointCounters, type RecordHeader } from './format'
import { createState, splitLoc, wholeLoc, type CacheState, type Part, type PieceLoc } from './state'

/** Anchors tried, newest first, before falling back to a full replay. */
const ANCHOR_TRIES_MAX = 4

export interface RecoveryReport {
  mode: 'empty' | 'checkpoint' | 'scan'
  checkpointRevision: number
  replayedRecords: number
  /** Headers or commit CRCs that failed: torn tails, rot, garbage. */
  invalidRecords: number
  /** Bytes stepped over while searching for the next valid record. */
  skippedBytes: number
  /** Blocks with neither a valid segment header nor erased bytes. */
  garbageBlocks: number
  unreadableBlocks: number
  /**
   * Reads that failed during recovery (segment headers, slots, records). The
   * state may then be missing pieces that are still on flash: such a session
   * writes no checkpoint, so a later open still finds them.
   */
  readErrors: number
}

export interface Recovered {
  state: CacheState
  nextSeq: number
  slots: SlotScan
  /** The anchor of the checkpoint recovery used. */
  checkpoint: CurrentCheckpoint | null
  counters: CheckpointCounters
  report: RecoveryReport
  /** Bytes replayed after the checkpoint. */
  replayedBytes: number
}

const before = (s1: number, o1: number, s2: number, o2: number): boolean => s1 < s2 || (s1 === s2 && o1 <= o2)

export async function recover (dev: CacheDevice, partsMax: number): Promise<Recovered> {
  const g = dev.geometry
  const { blockBytes, programBytes } = g
  const state = createState(g.blockCount, CACHE_SLOT_BLOCKS, programBytes)
  const blocks = state.blocks
  const headerBytes = alignUp(SEGMENT_HEADER_BYTES, programBytes)
  const isIo = (err: unknown): boolean => { if (CanopyError.is(err, 'FLASH_IO')) return true; throw err }
  let mode: RecoveryReport['mode'] = 'empty'
  let replayedRecords = 0
  let replayedBytes = 0
  let invalidRecords = 0
  let skippedBytes = 0
  let garbageBlocks = 0
  let unreadableBlocks = 0
  let readErrors = 0

  // 1. Which blocks hold a segment.
  const bySeq = new Map<number, number>()
  let maxSeq = 0
  for (let b = CACHE_SLOT_BLOCKS; b < g.blockCount; b++) {
    let head: Buffer
    try {
      head = await dev.read(b, 0, headerBytes, CACHE_OPEN_READ_ATTEMPTS)
    } catch (err) {
      isIo(err)
      state.setState(b, 'unknown')
      unreadableBlocks++
      readErrors++
      continue
    }
    const h = decodeSegmentHeader(head, b, blockBytes)
    if (h === null || bySeq.has(h.seq)) {
      if (h !== null || !isErased(head)) garbageBlocks++
      // Two blocks cannot both hold one segment: trust neither the second nor erase it.
      if (h !== null) state.setState(b, 'unknown')
      continue
    }
    state.setState(b, 'sealed')
    blocks[b]!.seq = h.seq
    blocks[b]!.end = blockBytes
    bySeq.set(h.seq, b)
    maxSeq = Math.max(maxSeq, h.seq)
  }

  // 2. The newest checkpoint that is still whole.
  const slots = await scanSlots(dev, partsMax)
  readErrors += slots.readErrors
  let cp: Checkpoint | null = null
  let current: Recovered['checkpoint'] = null
  for (const a of slots.anchors.filter((x) => x.parts.length > 0).slice(0, ANCHOR_TRIES_MAX)) {
    cp = await loadCheckpoint(dev, state, a)
    if (cp !== null) {
      current = a
      for (const p of a.parts) blocks[p.block]!.cpParts++
      break
    }
  }

  const present = (block: number, seq: number): boolean => blocks[block]?.state === 'sealed' && blocks[block]!.seq === seq

  // 3. The checkpoint's view, kept where its segments are still on flash.
  if (cp !== null) {
    mode = 'checkpoint'
    for (const [deadBlock, deadSeq, block, seq, offset] of cp.dead) {
      if (!present(deadBlock, deadSeq)) continue
      state.setState(deadBlock, 'dead')
      if (present(block, seq)) state.addExtra(TYPE_OBITUARY, block, offset, deadSeq, deadBlock)
    }
    for (const [k, length, block, seq, offset, length1, block2, seq2, offset2] of cp.pieces) {
      const key = hex(k)
      const whole = block2 === NO_BLOCK
      const first: Part = { block, offset, length: length1 }
      const second: Part = { block: block2, offset: offset2, length: length - length1 }
      const fits = (x: Part): boolean => x.offset + recordBytesFor(x.length, programBytes) <= blockBytes
      if (length1 > length || (whole && length1 !== length) || state.index.has(key) || !present(block, seq) || !fits(first)) continue
      if (!whole && (!present(block2, seq2) || !fits(second) || block2 === block)) continue
      state.addPiece(key, whole ? wholeLoc(first) : splitLoc(first, second))
    }
    for (const [key, block, seq, offset, a, b] of cp.tombs) {
      if (present(block, seq)) state.addExtra(TYPE_TOMBSTONE, block, offset, a, b, hex(key))
    }
  }

  // 4. Replay everything after the checkpoint, in log order.
  const segments = [...bySeq].filter(([seq, b]) => blocks[b]!.state === 'sealed' && (cp === null || seq >= cp.logSeq)).sort((x, y) => x[0] - y[0])
  if (cp === null && segments.length > 0) mode = 'scan'
  // The first part of a split piece waits for the record right after it: its second part, or nothing.
  let firstPart: { key: string, part: Part, total: number } | null = null
  const place = (key: string, loc: PieceLoc): void => {
    const old = state.index.get(key)
    if (old === undefined) state.addPiece(key, loc)
    else if (old.length === loc.length) state.movePiece(key, loc) // a compaction's copy: same piece, same recency
    else invalidRecords++ // one hash, two lengths: not a copy of ours
  }
  const apply = (h: RecordHeader, block: number): void => {
    replayedRecords++
    replayedBytes += h.recordBytes
    const key = hex(h.key)
    const part: Part = { block, offset: h.offset, length: h.bodyLength }
    const pending = firstPart
    firstPart = null
    if (h.type === TYPE_PIECE && h.b === PART_SECOND) {
      if (pending?.key === key && pending.total === h.a && pending.part.length + h.bodyLength === h.a && pending.part.block !== block) place(key, splitLoc(pending.part, part))
      else invalidRecords++ // a second part without its first (torn away): dead bytes
      return
    }
    if (pending !== null) invalidRecords++ // a first part whose second never landed
    if (h.type === TYPE_PIECE) {
      if (h.b === PART_FIRST) firstPart = { key, part, total: h.a }
      else if (h.b === PART_WHOLE && h.a === h.bodyLength) place(key, wholeLoc(part))
      else invalidRecords++
    } else if (h.type === TYPE_TOMBSTONE) {
      const old = state.index.get(key)
      const last = old === undefined ? null : state.lastPosition(old)
      if (last !== null && before(last.seq, last.offset, h.a, h.b)) state.removePiece(key)
      state.addExtra(TYPE_TOMBSTONE, block, h.offset, h.a, h.b, key)
    } else if (h.type === TYPE_OBITUARY) {
      if (present(h.b, h.a)) {
        state.clearBlock(h.b)
        state.setState(h.b, 'dead')
      }
      state.addExtra(TYPE_OBITUARY, block, h.offset, h.a, h.b)
    } // checkpoint parts are read through their anchor only
  }

  /**
   * Walk one segment's records from `at`, keeping where the valid records end;
   * false when a read failed. Stops at erased bytes (nothing written there);
   * on a damaged record, searches the rest of the block for the next valid
   * header at a program boundary.
   */
  const scanSegment = async (block: number, seq: number, at: number): Promise<boolean> => {
    const headerAt = (buf: Buffer, i: number, offset: number): RecordHeader | null => {
      const h = decodeRecordHeader(buf, i, { seq, offset, blockBytes, programBytes })
      return h !== null && recordCommitted(buf.subarray(i), h) ? h : null
    }
    const info = blocks[block]!
    info.end = at
    while (at + RECORD_HEADER_BYTES <= blockBytes) {
      let ok: RecordHeader | null = null
      let next: number | null = null
      try {
        const head = await dev.read(block, at, RECORD_HEADER_BYTES, CACHE_OPEN_READ_ATTEMPTS)
        if (isErased(head)) break
        const h = decodeRecordHeader(head, 0, { seq, offset: at, blockBytes, programBytes })
        if (h !== null) ok = headerAt(await dev.read(block, at, h.recordBytes, CACHE_OPEN_READ_ATTEMPTS), 0, at)
        if (ok === null && at + programBytes < blockBytes) {
          // Resync: the next valid, committed record at a program boundary.
          const from = at + programBytes
          const rest = await dev.read(block, from, blockBytes - from, CACHE_OPEN_READ_ATTEMPTS)
          for (let p = 0; next === null && p + RECORD_HEADER_BYTES <= rest.length; p += programBytes) {
            // "CN": a cheap filter before the CRC.
            if (rest[p] === 0x43 && rest[p + 1] === 0x4e && headerAt(rest, p, from + p) !== null) next = from + p
          }
        }
      } catch (err) {
        return !isIo(err)
      }
      if (ok === null) {
        invalidRecords++
        if (next === null) break
        skippedBytes += next - at
        at = next
        continue
      }
      apply(ok, block)
      at += ok.recordBytes
      info.end = at
    }
    return true
  }

  for (const [seq, block] of segments) {
    if (blocks[block]!.state !== 'sealed') continue // declared dead by an obituary met earlier
    if (!await scanSegment(block, seq, cp !== null && seq === cp.logSeq ? Math.max(headerBytes, cp.logOffset) : headerBytes)) {
      // Records past the failed read are unknown: never compact or extend this segment this session.
      readErrors++
      state.setState(block, 'unknown')
    }
  }

  // 5. Keep appending to the newest segment only if nothing at all was written past its last record.
  const newest = segments.at(-1)?.[1]
  if (newest !== undefined && blocks[newest]!.state === 'sealed') {
    try {
      if (await dev.erasedFrom(newest, blocks[newest]!.end)) state.setState(newest, 'open')
    } catch (err) {
      isIo(err)
      readErrors++
    }
  }

  // Every segment is seen, or else we start above every number ever reserved.
  let nextSeq = maxSeq + 1
  if (readErrors > slots.readErrors) {
    nextSeq = Math.max(nextSeq, slots.reservedUntil)
    if (slots.readErrors > 0) nextSeq += CACHE_SEQ_SKIP_UNREADABLE // last resort: see FORMAT.md
  }
  return {
    state,
    nextSeq,
    slots,
    checkpoint: current,
    counters: cp?.counters ?? Object.fromEntries(COUNTER_FIELDS.map((f) => [f, 0])) as Record<typeof COUNTER_FIELDS[number], number>,
    report: { mode, checkpointRevision: cp?.revision ?? 0, replayedRecords, invalidRecords, skippedBytes, garbageBlocks, unreadableBlocks, readErrors },
    replayedBytes
  }
}
