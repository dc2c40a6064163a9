// Checkpoints and anchors. A checkpoint is the whole index as of one log
// position, written into the log itself as checkpoint records (so its wear is
// spread like any data). An anchor, appended to one of the two slot blocks
// with a revision counter, says where the newest complete checkpoint is and
// carries its SHA-256. Anchors also reserve segment numbers: no segment number
// at or above the newest anchor's nextSeq is used before a new anchor raises
// it, so a session that could not read every block still never reuses one.
// Order: parts, sync, anchor, sync. Correctness does not rest on that first
// sync (an anchor counts only if its parts read back and hash right); it makes
// a landed anchor useful. Recovery takes the newest anchor whose checkpoint
// still reads back whole, and replays the log after it; with none, it replays
// everything (slower, same result).

import { CanopyError } from '../errors'
import { CACHE_CHECKPOINT_INTERVAL_FACTOR, CACHE_CHECKPOINT_RECORDS_MAX, CACHE_OPEN_READ_ATTEMPTS, CACHE_SLOT_BLOCKS } from '../limits'
import { isErased, isFatalWrite, type CacheDevice } from './device'
import { ANCHOR_FIXED_BYTES, decodeAnchor, decodeCheckpoint, decodeRecordHeader, encodeAnchor, HASH_BYTES, keyBytes, NO_BLOCK, recordBody, recordBytesFor, recordCommitted, sha256, TYPE_CHECKPOINT, TYPE_TOMBSTONE, type Anchor, type Checkpoint, type CheckpointCounters, type CheckpointPart } from './format'
import type { LogWriter } from './log'
import type { CacheState } from './state'

export interface SlotScan {
  /** Valid anchors from both slots, newest first. */
  anchors: Anchor[]
  activeSlot: number
  /** Where the next anchor goes in the active slot (blockBytes: switch slots first). */
  slotEnd: number
  revision: number
  /** The highest reservation among all valid anchors. */
  reservedUntil: number
  readErrors: number
}

/** Read both slot blocks and every valid anchor in them (each slot: anchors back to back from offset 0). */
export async function scanSlots (dev: CacheDevice, partsMax: number): Promise<SlotScan> {
  const g = dev.geometry
  const anchors: Array<Anchor & { slot: number }> = []
  const ends: number[] = []
  let readErrors = 0
  for (let slot = 0; slot < CACHE_SLOT_BLOCKS; slot++) {
    let buf: Buffer
    try {
      // One read of the whole slot: anchors are small and slots are read once per open.
      buf = await dev.read(slot, 0, g.blockBytes, CACHE_OPEN_READ_ATTEMPTS)
    } catch (err) {
      if (!CanopyError.is(err, 'FLASH_IO')) throw err
      ends.push(g.blockBytes)
      readErrors++
      continue
    }
    let at = 0
    for (let a; at + ANCHOR_FIXED_BYTES <= buf.length && (a = decodeAnchor(buf, at, g.programBytes, partsMax)) !== null; at += a.anchorBytes) anchors.push({ ...a, slot })
    ends.push(isErased(buf.subarray(at)) ? at : g.blockBytes)
  }
  anchors.sort((x, y) => y.revision - x.revision)
  const newest = anchors[0]
  const activeSlot = newest?.slot ?? 0
  const reservedUntil = anchors.reduce((m, a) => Math.max(m, a.nextSeq), 0)
  return { anchors, activeSlot, slotEnd: ends[activeSlot]!, revision: newest?.revision ?? 0, reservedUntil, readErrors }
}

/** The checkpoint an anchor names, if every part still reads back whole and the hash matches. */
export async function loadCheckpoint (dev: CacheDevice, state: CacheState, anchor: Anchor): Promise<Checkpoint | null> {
  const g = dev.geometry
  const bodies: Buffer[] = []
  for (const [i, p] of anchor.parts.entries()) {
    const blk = state.blocks[p.block]
    if (blk?.state !== 'sealed' || blk.seq !== p.seq) return null
    const size = recordBytesFor(p.bodyLength, g.programBytes)
    if (p.offset + size > g.blockBytes) return null
    let rec: Buffer
    try {
      rec = await dev.read(p.block, p.offset, size, CACHE_OPEN_READ_ATTEMPTS)
    } catch (err) {
      if (CanopyError.is(err, 'FLASH_IO')) return null
      throw err
    }
    const h = decodeRecordHeader(rec, 0, { ...g, seq: p.seq, offset: p.offset })
    if (h?.type !== TYPE_CHECKPOINT || h.b !== i || h.bodyLength !== p.bodyLength || !recordCommitted(rec, h)) return null
    bodies.push(recordBody(rec, h))
  }
  const blob = Buffer.concat(bodies)
  if (blob.length !== anchor.checkpointBytes || !sha256(blob).equals(anchor.checkpointHash)) return null
  return decodeCheckpoint(blob)
}

/** A checkpoint as its anchor names it. */
export type CurrentCheckpoint = Pick<Anchor, 'parts' | 'checkpointBytes' | 'checkpointHash'>

export interface Checkpointer {
  /** Set when a compaction erased a block holding the current checkpoint. */
  stale: boolean
  written: number
  failed: number
  /** The newest anchor's revision. */
  readonly revision: number
  /**
   * Whether a checkpoint is due; `closing`: whenever anything was appended
   * since the last. Never when recovery could not read everything: it could
   * leave out pieces still on flash.
   */
  due (closing?: boolean): boolean
  /** Blocks the parts of a checkpoint of `bytes` need (the caller makes room first, so no compaction runs in between). */
  blocksNeeded (bytes: number): number
  /** The index as of now, least recently used first. */
  snapshot (counters: CheckpointCounters): Checkpoint
  /**
   * Write a checkpoint and its anchor. Gives up (counted in `failed`) when it
   * could not: too large, no room, bad slots; the log stays correct without
   * it. Power loss and our own bugs are thrown.
   */
  write (blob: Buffer): Promise<void>
  /** Durably reserve segment numbers below `until` (an anchor naming the current checkpoint, if it is whole). */
  reserve (until: number): Promise<void>
}

/**
 * @param current the checkpoint recovery used (anchors name it until the next)
 * @param disabled recovery could not read everything: no checkpoints this session
 */
export function createCheckpointer (
  dev: CacheDevice, state: CacheState, log: LogWriter, partsMax: number, intervalBytesMin: number,
  slots: SlotScan, current: CurrentCheckpoint | null, disabled: boolean
): Checkpointer {
  const { blockBytes, programBytes } = dev.geometry
  let { activeSlot, slotEnd, revision } = slots
  /** Bytes of the last checkpoint written or loaded. */
  let lastBytes = current?.checkpointBytes ?? 0
  /** Body bytes of one checkpoint part: what fills an empty segment. */
  const perPart = log.usableBytes - state.extraBytes

  /** Append an anchor to the active slot; when it is full or damaged, erase the other slot and continue there. */
  const writeAnchor = async (nextSeq: number, c: CurrentCheckpoint | null): Promise<boolean> => {
    const anchor = encodeAnchor({ checkpointBytes: 0, checkpointHash: Buffer.alloc(HASH_BYTES), parts: [], ...c, revision: revision + 1, nextSeq }, programBytes)
    for (let attempt = 0; attempt < CACHE_SLOT_BLOCKS; attempt++) {
      try {
        if (slotEnd + anchor.length > blockBytes) {
          slotEnd = blockBytes // if the erase fails, this slot stays unusable
          activeSlot = (activeSlot + 1) % CACHE_SLOT_BLOCKS
          await dev.erase(activeSlot)
          slotEnd = 0
        }
        await dev.program(activeSlot, slotEnd, anchor)
        slotEnd += anchor.length
        await dev.sync()
        revision++
        return true
      } catch (err) {
        if (isFatalWrite(err)) throw err
        slotEnd = blockBytes
      }
    }
    return false
  }

  const cp: Checkpointer = {
    stale: false,
    written: 0,
    failed: 0,
    get revision () { return revision },
    due: (closing) => !disabled && (cp.stale || (log.cpRecords > 0 &&
      (closing === true || log.cpRecords >= CACHE_CHECKPOINT_RECORDS_MAX || log.cpBytes >= Math.max(intervalBytesMin, CACHE_CHECKPOINT_INTERVAL_FACTOR * lastBytes)))),
    blocksNeeded: (bytes) => Math.ceil(bytes / perPart) + 1,
    snapshot (counters) {
      const pos = log.position()
      const blocks = state.blocks
      const c: Checkpoint = { revision: revision + 1, logSeq: pos.seq, logOffset: pos.offset, nextSeq: log.nextSeq, counters, pieces: [], tombs: [], dead: [] }
      for (const [key, loc] of state.index) {
        const two = loc.block2 >= 0
        c.pieces.push([keyBytes(key), loc.length, loc.block, blocks[loc.block]!.seq, loc.offset, loc.length1,
          two ? loc.block2 : NO_BLOCK, two ? blocks[loc.block2]!.seq : 0, loc.offset2])
      }
      for (const b of blocks) {
        for (const e of b.extras) {
          if (e.type === TYPE_TOMBSTONE) c.tombs.push([keyBytes(e.key), e.block, b.seq, e.offset, e.a, e.b])
          else c.dead.push([e.b, e.a, e.block, b.seq, e.offset])
        }
      }
      return c
    },
    async write (blob) {
      const count = Math.max(1, Math.ceil(blob.length / perPart))
      const parts: CheckpointPart[] = []
      if (count > partsMax) { cp.failed++; return }
      const id = revision + 1 // the checkpoint's revision, written into its parts (informational)
      try {
        for (let i = 0; i < count; i++) {
          const body = blob.subarray(i * perPart, (i + 1) * perPart)
          const placed = await log.append({ type: TYPE_CHECKPOINT, a: id, b: i }, body)
          parts.push({ block: placed.block, seq: placed.seq, offset: placed.offset, bodyLength: body.length })
        }
        await log.sync()
      } catch (err) {
        if (isFatalWrite(err) && !CanopyError.is(err, 'CACHE_FULL')) throw err
        cp.failed++
        return
      }
      const c = { parts, checkpointBytes: blob.length, checkpointHash: sha256(blob) }
      // The anchor's revision is read afresh: the parts may have reserved segment numbers (new anchors) meanwhile.
      if (!await writeAnchor(log.reservedUntil, c)) { cp.failed++; return }
      current = c
      lastBytes = blob.length
      log.cpRecords = log.cpBytes = 0
      cp.stale = false
      cp.written++
      for (const b of state.blocks) b.cpParts = 0
      for (const p of parts) state.blocks[p.block]!.cpParts++
    },
    async reserve (until) {
      if (!await writeAnchor(until, cp.stale ? null : current)) throw new CanopyError('FLASH_IO', 'no anchor slot takes a write')
      log.reservedUntil = until
    }
  }
  return cp
}
