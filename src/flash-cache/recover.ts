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
import { CACHE_SEQ_SKIP_UNREADABLE, CACHE_SLOT_BLOCKS } from '../limits'
import { loadCheckpoint, scanSlots, type SlotScan } from './checkpoint'
import { isErased, type CacheDevice } from './device'
import {
  alignUp, decodeRecordHeader, decodeSegmentHeader, NO_BLOCK, PiecePart, RECORD_HEADER_BYTES, recordBytesFor, recordCommitted, RecordType, SEGMENT_HEADER_BYTES,
  type Checkpoint, type CheckpointCounters, type CheckpointPart, type RecordHeader
} from './format'
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
  /** The checkpoint recovery used, as its anchor names it. */
  checkpoint: { parts: CheckpointPart[], bytes: number, hash: Buffer } | null
  counters: CheckpointCounters
  report: RecoveryReport
  /** Bytes replayed after the checkpoint. */
  replayedBytes: number
}

const before = (s1: number, o1: number, s2: number, o2: number): boolean => s1 < s2 || (s1 === s2 && o1 <= o2)

export async function recover (dev: CacheDevice, partsMax: number): Promise<Recovered> {
  const g = dev.geometry
  const state = createState(g.blockCount, CACHE_SLOT_BLOCKS, g.programBytes)
  const blocks = state.blocks
  const report: RecoveryReport = { mode: 'empty', checkpointRevision: 0, replayedRecords: 0, invalidRecords: 0, skippedBytes: 0, garbageBlocks: 0, unreadableBlocks: 0, readErrors: 0 }
  const headerBytes = alignUp(SEGMENT_HEADER_BYTES, g.programBytes)
  const recordSize = (bodyLength: number): number => recordBytesFor(bodyLength, g.programBytes)

  // 1. Which blocks hold a segment.
  const bySeq = new Map<number, number>()
  let maxSeq = 0
  for (let b = CACHE_SLOT_BLOCKS; b < g.blockCount; b++) {
    let head: Buffer
    try {
      head = await dev.readAtOpen(b, 0, headerBytes)
    } catch (err) {
      if (!CanopyError.is(err, 'FLASH_IO')) throw err
      state.setState(b, 'unknown')
      report.unreadableBlocks++
      report.readErrors++
      continue
    }
    const h = decodeSegmentHeader(head, b, g.blockBytes)
    if (h === null || bySeq.has(h.seq)) {
      if (h !== null || !isErased(head)) report.garbageBlocks++
      // Two blocks cannot both hold one segment: trust neither the second nor erase it.
      if (h !== null) state.setState(b, 'unknown')
      continue
    }
    state.setState(b, 'sealed')
    blocks[b]!.seq = h.seq
    blocks[b]!.end = g.blockBytes
    bySeq.set(h.seq, b)
    maxSeq = Math.max(maxSeq, h.seq)
  }

  // 2. The newest checkpoint that is still whole.
  const slots = await scanSlots(dev, partsMax)
  report.readErrors += slots.readErrors
  let cp: Checkpoint | null = null
  let current: Recovered['checkpoint'] = null
  for (const a of slots.anchors.filter((x) => x.parts.length > 0).slice(0, ANCHOR_TRIES_MAX)) {
    cp = await loadCheckpoint(dev, state, a)
    if (cp !== null) {
      current = { parts: a.parts, bytes: a.checkpointBytes, hash: a.checkpointHash }
      for (const p of a.parts) blocks[p.block]!.cpParts++
      break
    }
  }

  const present = (block: number, seq: number): boolean => blocks[block]?.state === 'sealed' && blocks[block]!.seq === seq

  // 3. The checkpoint's view, kept where its segments are still on flash.
  if (cp !== null) {
    report.mode = 'checkpoint'
    report.checkpointRevision = cp.revision
    for (const d of cp.dead) {
      if (!present(d.deadBlock, d.deadSeq)) continue
      state.setState(d.deadBlock, 'dead')
      if (present(d.block, d.seq)) state.addExtra({ type: RecordType.obituary, block: d.block, offset: d.offset, key: '', a: d.deadSeq, b: d.deadBlock })
    }
    for (const p of cp.pieces) {
      const key = p.key.toString('hex')
      const whole = p.block2 === NO_BLOCK
      if (p.length1 > p.length || (whole && p.length1 !== p.length) || state.index.has(key)) continue
      const first: Part = { block: p.block, offset: p.offset, length: p.length1 }
      const second: Part = { block: p.block2, offset: p.offset2, length: p.length - p.length1 }
      const fits = (x: Part): boolean => x.offset + recordSize(x.length) <= g.blockBytes
      if (!present(p.block, p.seq) || !fits(first)) continue
      if (!whole && (!present(p.block2, p.seq2) || !fits(second) || p.block2 === p.block)) continue
      state.addPiece(key, whole ? wholeLoc(first) : splitLoc(first, second))
    }
    for (const t of cp.tombs) {
      if (present(t.block, t.seq)) state.addExtra({ type: RecordType.tombstone, block: t.block, offset: t.offset, key: t.key.toString('hex'), a: t.targetSeq, b: t.targetOffset })
    }
  }

  // 4. Replay everything after the checkpoint, in log order.
  const segments = [...bySeq].filter(([seq, b]) => blocks[b]!.state === 'sealed' && (cp === null || seq >= cp.logSeq)).sort((x, y) => x[0] - y[0])
  if (cp === null && segments.length > 0) report.mode = 'scan'
  let replayedBytes = 0
  // The first part of a split piece waits for the record right after it: its second part, or nothing.
  let firstPart: { key: string, part: Part, total: number } | null = null
  const place = (key: string, loc: PieceLoc): void => {
    const old = state.index.get(key)
    if (old === undefined) state.addPiece(key, loc)
    else if (old.length === loc.length) state.movePiece(key, loc) // a compaction's copy: same piece, same recency
    else report.invalidRecords++ // one hash, two lengths: not a copy of ours
  }
  const apply = (h: RecordHeader, block: number): void => {
    report.replayedRecords++
    replayedBytes += h.recordBytes
    const key = h.key.toString('hex')
    const part: Part = { block, offset: h.offset, length: h.bodyLength }
    const pending = firstPart
    firstPart = null
    if (h.type === RecordType.piece && h.b === PiecePart.second) {
      if (pending?.key === key && pending.total === h.a && pending.part.length + h.bodyLength === h.a && pending.part.block !== block) place(key, splitLoc(pending.part, part))
      else report.invalidRecords++ // a second part without its first (torn away): dead bytes
      return
    }
    if (pending !== null) report.invalidRecords++ // a first part whose second never landed
    if (h.type === RecordType.piece) {
      if (h.b === PiecePart.first) firstPart = { key, part, total: h.a }
      else if (h.b === PiecePart.whole && h.a === h.bodyLength) place(key, wholeLoc(part))
      else report.invalidRecords++
    } else if (h.type === RecordType.tombstone) {
      const old = state.index.get(key)
      const last = old === undefined ? null : state.lastPosition(old)
      if (last !== null && before(last.seq, last.offset, h.a, h.b)) state.removePiece(key)
      state.addExtra({ type: RecordType.tombstone, block, offset: h.offset, key, a: h.a, b: h.b })
    } else if (h.type === RecordType.obituary) {
      if (present(h.b, h.a)) {
        state.clearBlock(h.b)
        state.setState(h.b, 'dead')
      }
      state.addExtra({ type: RecordType.obituary, block, offset: h.offset, key: '', a: h.a, b: h.b })
    } // checkpoint parts are read through their anchor only
  }
  for (const [seq, block] of segments) {
    if (blocks[block]!.state !== 'sealed') continue // declared dead by an obituary met earlier
    const from = cp !== null && seq === cp.logSeq ? Math.max(headerBytes, cp.logOffset) : headerBytes
    const scanned = await scanSegment(dev, block, seq, from, report, apply)
    blocks[block]!.end = scanned.end
    if (scanned.readError) {
      // Records past the failed read are unknown: never compact or extend this segment this session.
      report.readErrors++
      state.setState(block, 'unknown')
    }
  }

  // 5. Keep appending to the newest segment only if nothing at all was written past its last record.
  const newest = segments.at(-1)?.[1]
  if (newest !== undefined && blocks[newest]!.state === 'sealed') {
    let clean = false
    try { clean = await dev.erasedFrom(newest, blocks[newest]!.end) } catch (err) { if (!CanopyError.is(err, 'FLASH_IO')) throw err; report.readErrors++ }
    if (clean) state.setState(newest, 'open')
  }

  // Every segment is seen, or else we start above every number ever reserved.
  let nextSeq = maxSeq + 1
  if (report.readErrors > slots.readErrors) {
    nextSeq = Math.max(nextSeq, slots.reservedUntil)
    if (slots.readErrors > 0) nextSeq += CACHE_SEQ_SKIP_UNREADABLE // last resort: see FORMAT.md
  }
  return {
    state,
    nextSeq,
    slots,
    checkpoint: current,
    counters: cp?.counters ?? { bytesProgrammed: 0, erases: 0, evictions: 0, corruptDropped: 0, bytesAccepted: 0 },
    report,
    replayedBytes
  }
}

/**
 * Walk one segment's records from `from`; returns where the valid records end.
 * Stops at erased bytes (nothing written there); on a damaged record, searches
 * the rest of the block for the next valid header at a program boundary.
 */
async function scanSegment (
  dev: CacheDevice, block: number, seq: number, from: number,
  report: RecoveryReport, apply: (h: RecordHeader, block: number) => void
): Promise<{ end: number, readError: boolean }> {
  const g = dev.geometry
  const expect = (offset: number): Parameters<typeof decodeRecordHeader>[2] => ({ seq, offset, blockBytes: g.blockBytes, programBytes: g.programBytes })
  let at = from
  let end = from
  while (at + RECORD_HEADER_BYTES <= g.blockBytes) {
    let ok: RecordHeader | null = null
    let next: number | null = null
    try {
      const head = await dev.readAtOpen(block, at, RECORD_HEADER_BYTES)
      if (isErased(head)) break
      const h = decodeRecordHeader(head, 0, expect(at))
      if (h !== null && recordCommitted(await dev.readAtOpen(block, at, h.recordBytes), h)) ok = h
      else if (at + g.programBytes < g.blockBytes) {
        // Resync: the next valid, committed record header at a program boundary.
        const rest = await dev.readAtOpen(block, at + g.programBytes, g.blockBytes - at - g.programBytes)
        for (let p = 0; next === null && p + RECORD_HEADER_BYTES <= rest.length; p += g.programBytes) {
          if (rest[p] !== 0x43 || rest[p + 1] !== 0x4e) continue // "CN": cheap filter before the CRC
          const r = decodeRecordHeader(rest, p, expect(at + g.programBytes + p))
          if (r !== null && recordCommitted(rest.subarray(p), r)) next = at + g.programBytes + p
        }
      }
    } catch (err) {
      if (!CanopyError.is(err, 'FLASH_IO')) throw err
      return { end, readError: true }
    }
    if (ok === null) {
      report.invalidRecords++
      if (next === null) break
      report.skippedBytes += next - at
      at = next
      continue
    }
    apply(ok, block)
    at += ok.recordBytes
    end = at
  }
  return { end, readError: false }
}
