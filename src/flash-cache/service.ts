// The flash cache as one of the agent's services: opened (and recovered) at
// start from <dataDir>/cache, closed at stop, its stats in /api/status under
// "cache" and in /metrics as canopy_cache_*. A cache that cannot be opened
// (a damaged or foreign flash area) is reported, not fatal: the agent runs on
// without it. A config that cannot work is fatal (it names the field).

import type { Service } from '../agent/service'
import type { Config } from '../config'
import { CanopyError } from '../errors'
import type { FlashGeometry, Hal } from '../hal'
import type { Metrics } from '../http'
import type { Logger } from '../log'
import { boundBytesMax, FlashCache, type FlashCacheStats } from './store'

/** The Linux flash twin's read and program units: small, so records pack tightly. */
const IO_UNIT_BYTES = 16
export const CACHE_FLASH_NAME = 'cache'

export function cacheGeometry (c: Config['cache']): FlashGeometry {
  return { readBytes: IO_UNIT_BYTES, programBytes: IO_UNIT_BYTES, blockBytes: c.blockBytes, blockCount: c.blockCount }
}

/** Cross-field checks the schema cannot make; CONFIG_INVALID naming the field. */
export function checkCacheConfig (c: Config['cache']): void {
  const max = boundBytesMax(c.blockBytes, c.blockCount, IO_UNIT_BYTES)
  if (c.bytesMax > max) {
    throw new CanopyError('CONFIG_INVALID', `config field "cache.bytesMax": got ${c.bytesMax}, expected at most ${max} (raise cache.blockCount)`,
      { detail: { field: 'cache.bytesMax' } })
  }
}

/** The cache's metrics (canopy_cache_NAME; see Metrics.stats). */
const METRICS: Array<[string, string, (s: FlashCacheStats) => number]> = [
  ['pieces', 'Pieces stored.', (s) => s.pieces],
  ['bytes', 'Piece bytes stored.', (s) => s.bytes],
  ['bytes_max', 'Byte bound.', (s) => s.bytesMax],
  ['pinned', 'Pinned pieces.', (s) => s.pinned],
  ['bad_blocks', 'Blocks retired.', (s) => s.flash.badBlocks + s.flash.deadBlocks],
  ['free_blocks', 'Erased flash blocks.', (s) => s.flash.freeBlocks],
  ['written_last_24h_bytes', 'Bytes written, last 24 h.', (s) => s.writes.budget.last24hBytes],
  ['write_budget_bytes_per_day', 'Write budget.', (s) => s.writes.budget.bytesPerDay],
  ['recovery_seconds', 'Last recovery time.', (s) => s.recovery.ms / 1000],
  ['evictions_total', 'Pieces evicted.', (s) => s.evictions],
  ['corrupt_dropped_total', 'Damaged pieces dropped.', (s) => s.corruptDropped],
  ['read_errors_total', 'Flash read errors.', (s) => s.readErrors],
  ['flash_written_bytes_total', 'Bytes written to flash.', (s) => s.writes.bytesProgrammed],
  ['stored_bytes_total', 'Piece bytes accepted.', (s) => s.writes.bytesAccepted]
]

export class FlashCacheService implements Service {
  readonly name = 'cache'
  /** The open cache; null before start, when disabled, or when it could not be opened. */
  cache: FlashCache | null = null
  readonly start: () => Promise<void>
  readonly stop: (deadlineMs: number) => Promise<void>
  readonly status: () => unknown

  constructor (c: Config['cache'], hal: Hal, log: Logger, metrics: Metrics) {
    let error: string | null = null
    const up = metrics.gauge('canopy_cache_up', '1 when open.')
    metrics.onCollect(() => { up.set(this.cache === null ? 0 : 1) })
    metrics.stats(() => this.cache?.stats(), METRICS.map(([name, help, get]) => [`canopy_cache_${name}`, help, get]))

    this.start = async () => {
      if (!c.enabled) return
      checkCacheConfig(c)
      try {
        const flash = await hal.openFlash(CACHE_FLASH_NAME, cacheGeometry(c))
        this.cache = await FlashCache.open(flash, { ...c, clock: hal.clock, log })
      } catch (err) {
        const e = CanopyError.from(err, 'FLASH_IO')
        error = `${e.code}: ${e.message}`
        log.error('no flash cache', { err: e })
      }
    }

    this.stop = async (deadlineMs) => {
      const cache = this.cache
      if (cache === null) return
      let timer: { cancel (): void } | undefined
      try {
        await Promise.race([cache.close(), new Promise<void>((resolve) => { timer = hal.clock.setTimeout(resolve, deadlineMs) })])
      } finally {
        timer?.cancel()
      }
    }

    this.status = () => {
      if (!c.enabled) return { enabled: false }
      if (this.cache === null) return { enabled: true, error: error ?? 'not open yet' }
      const s = this.cache.stats()
      return { ...s, writes: { ...s.writes, amplification: Math.round(s.writes.amplification * 1000) / 1000 }, recovery: { ...s.recovery, ms: Math.round(s.recovery.ms * 10) / 10 } }
    }
  }
}
