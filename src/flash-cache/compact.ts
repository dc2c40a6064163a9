// Compaction: copy a sealed segment's live records to the head of the log,
// sync, then erase it. The victim is the segment with the fewest live bytes
// (greedy), so each block freed costs the least copying. Copies are synced
// before the erase: at every instant one of the two copies is durable. A
// piece is copied only after its commit CRC and its SHA-256 both check, so
// every record's CRC covers bytes that were verified against their hash just
// before they were written (what a CRC-checked read relies on). A block whose
// erase fails keeps its segment forever; an obituary record tells recovery to
// ignore it (its live records were already copied).

import { assert, CanopyError } from '../errors'
import { isBadBlock, type CacheDevice } from './device'
import { keyBytes, TYPE_OBITUARY, TYPE_TOMBSTONE } from './format'
import type { LogWriter, RecordSpec } from './log'
import { readPiece } from './reader'
import type { CacheState, Extra } from './state'

export interface Compactor {
  compactions: number
  /** One round on the sealed segment with the fewest live bytes; false when none leaves `gain` bytes free. */
  once (gain: number): Promise<boolean>
  compact (victim: number): Promise<boolean>
  /** Write an obituary for a block that holds a segment we cannot erase. */
  bury (block: number): Promise<void>
}

/**
 * @param onCorrupt a live piece failed its check while being copied: it is dropped
 * @param checkpointLost the erased block held parts of the current checkpoint
 */
export function createCompactor (dev: CacheDevice, state: CacheState, log: LogWriter, onCorrupt: (key: string) => void, checkpointLost: () => void): Compactor {
  const blocks = state.blocks
  // Blocks with live pieces we could not read this session: never erased (they may read again later).
  const unmovable = new Set<number>()
  const extraSpec = (e: Extra): RecordSpec => ({ type: e.type, a: e.a, b: e.b, key: e.type === TYPE_TOMBSTONE ? keyBytes(e.key) : undefined })
  const empty = Buffer.alloc(0)

  const bury = async (block: number): Promise<void> => {
    const info = blocks[block]!
    log.retire(block)
    if (info.state !== 'dead') {
      state.clearBlock(block)
      state.setState(block, 'dead')
    }
    const placed = await log.append({ type: TYPE_OBITUARY, a: info.seq, b: block }, empty, true)
    state.addExtra(TYPE_OBITUARY, placed.block, placed.offset, info.seq, block)
    await log.sync()
  }

  const compact = async (victim: number): Promise<boolean> => {
    const info = blocks[victim]!
    assert(info.state === 'sealed', 'compacting a sealed segment')
    for (const [key, loc] of state.piecesIn(victim)) {
      let body: Buffer | null | 'moved'
      try {
        body = await readPiece(dev, state, key, loc, true)
      } catch (err) {
        if (!CanopyError.is(err, 'FLASH_IO')) throw err
        unmovable.add(victim)
        return false
      }
      // Only a failed sync takes a piece out meanwhile (its put was not acknowledged): nothing to copy then.
      if (body === 'moved') continue
      if (body === null) {
        state.removePiece(key)
        onCorrupt(key)
        continue
      }
      const copy = await log.appendPiece(keyBytes(key), body, true)
      if (state.index.get(key) === loc) state.movePiece(key, copy)
    }
    for (const e of [...info.extras]) {
      // Forget the old place only once the copy is written: a failed copy leaves it tracked.
      const placed = state.extraLive(e) ? await log.append(extraSpec(e), empty, true) : null
      state.removeExtra(e)
      if (placed !== null) state.addExtra(e.type, placed.block, placed.offset, e.a, e.b, e.key)
    }
    assert(info.live === 0 && info.pieces === 0, 'compacted segment empty')
    if (info.cpParts > 0) checkpointLost()
    // The copies must be durable before the originals go.
    await log.sync()
    info.generation++
    try {
      await dev.erase(victim)
    } catch (err) {
      if (!isBadBlock(err)) throw err
      await bury(victim)
      return true
    }
    state.clearBlock(victim)
    info.seq = 0
    state.setState(victim, info.retired ? 'bad' : 'free')
    c.compactions++
    return true
  }

  const c: Compactor = {
    compactions: 0,
    async once (gain) {
      const victim = state.sealed('live', unmovable)
      return victim !== null && blocks[victim]!.live + gain <= log.usableBytes && await compact(victim)
    },
    compact,
    bury
  }
  return c
}
