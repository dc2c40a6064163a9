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
import { boundBytesMax, FlashCache } from './store'

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
    throw new CanopyError('CONFIG_INVALID', `config field "cache.bytesMax": got ${c.bytesMax}, expected at most ${max} (7/8 of a flash area of ${c.blockCount} blocks of ${c.blockBytes} bytes; raise cache.blockCount)`,
      { detail: { field: 'cache.bytesMax' } })
  }
}

export class FlashCacheService implements Service {
  readonly name = 'cache'
  /** The open cache; null before start, when disabled, or when it could not be opened. */
  cache: FlashCache | null = null
  private error: string | null = null

  constructor (private readonly config: Config['cache'], private readonly hal: Hal, private readonly log: Logger, metrics: Metrics) {
    this.registerMetrics(metrics)
  }

  async start (): Promise<void> {
    if (!this.config.enabled) return
    checkCacheConfig(this.config)
    try {
      const flash = await this.hal.openFlash(CACHE_FLASH_NAME, cacheGeometry(this.config))
      this.cache = await FlashCache.open(flash, {
        clock: this.hal.clock,
        bytesMax: this.config.bytesMax,
        piecesMax: this.config.piecesMax,
        writeBudgetBytesPerDay: this.config.writeBudgetBytesPerDay,
        verifyReads: this.config.verifyReads,
        log: this.log
      })
    } catch (err) {
      const e = CanopyError.from(err, 'FLASH_IO')
      this.error = `${e.code}: ${e.message}`
      this.log.error('flash cache unavailable; running without it', { err: e })
    }
  }

  async stop (deadlineMs: number): Promise<void> {
    const cache = this.cache
    if (cache === null) return
    let timer: { cancel (): void } | null = null
    const late = new Promise<void>((resolve) => { timer = this.hal.clock.setTimeout(resolve, deadlineMs) })
    try {
      await Promise.race([cache.close(), late])
    } finally {
      (timer as { cancel (): void } | null)?.cancel()
    }
  }

  status (): unknown {
    if (!this.config.enabled) return { enabled: false }
    if (this.cache === null) return { enabled: true, error: this.error ?? 'not open yet' }
    const s = this.cache.stats()
    return {
      pieces: s.pieces,
      bytes: s.bytes,
      bytesMax: s.bytesMax,
      piecesMax: s.piecesMax,
      freeBytes: s.freeBytes,
      pinned: s.pinned,
      evictions: s.evictions,
      corruptDropped: s.corruptDropped,
      readErrors: s.readErrors,
      flash: s.flash,
      writes: {
        bytesProgrammed: s.writes.bytesProgrammed,
        bytesAccepted: s.writes.bytesAccepted,
        amplification: Math.round(s.writes.amplification * 1000) / 1000,
        erases: s.writes.erases,
        budgetBytesPerDay: s.writes.budget.bytesPerDay,
        last24hBytes: s.writes.budget.last24hBytes,
        overBudget: s.writes.budget.overBudget
      },
      compactions: s.compactions,
      checkpoints: s.checkpoints,
      recovery: { mode: s.recovery.mode, ms: Math.round(s.recovery.ms * 10) / 10, replayedRecords: s.recovery.replayedRecords, invalidRecords: s.recovery.invalidRecords, garbageBlocks: s.recovery.garbageBlocks }
    }
  }

  private registerMetrics (m: Metrics): void {
    const g = (name: string, help: string) => m.gauge(`canopy_cache_${name}`, help)
    const c = (name: string, help: string) => m.counter(`canopy_cache_${name}`, help)
    const pieces = g('pieces', 'Pieces in the flash cache.')
    const bytes = g('bytes', 'Bytes of pieces in the flash cache.')
    const bytesMax = g('bytes_max', 'Bound on the flash cache (lowered when blocks go bad).')
    const pinned = g('pinned', 'Pinned piece hashes.')
    const badBlocks = g('bad_blocks', 'Flash blocks retired this session (failed program or erase).')
    const freeBlocks = g('free_blocks', 'Erased flash blocks available.')
    const last24h = g('written_last_24h_bytes', 'Bytes programmed to flash in the last 24 hours.')
    const budget = g('write_budget_bytes_per_day', 'The configured write budget.')
    const recovery = g('recovery_seconds', 'Time the last open spent recovering.')
    const up = g('up', '1 when the flash cache is open.')
    const evictions = c('evictions_total', 'Pieces evicted to keep the bounds.')
    const corrupt = c('corrupt_dropped_total', 'Pieces found damaged on read and dropped.')
    const readErrors = c('read_errors_total', 'Flash read errors.')
    const written = c('flash_written_bytes_total', 'Bytes programmed to flash (lifetime).')
    const accepted = c('stored_bytes_total', 'Piece bytes accepted (lifetime).')
    m.onCollect(() => {
      up.set(this.cache === null ? 0 : 1)
      if (this.cache === null) return
      const s = this.cache.stats()
      pieces.set(s.pieces); bytes.set(s.bytes); bytesMax.set(s.bytesMax); pinned.set(s.pinned)
      badBlocks.set(s.flash.badBlocks + s.flash.deadBlocks); freeBlocks.set(s.flash.freeBlocks)
      last24h.set(s.writes.budget.last24hBytes); budget.set(s.writes.budget.bytesPerDay)
      recovery.set(s.recovery.ms / 1000)
      evictions.set(s.evictions); corrupt.set(s.corruptDropped); readErrors.set(s.readErrors)
      written.set(s.writes.bytesProgrammed); accepted.set(s.writes.bytesAccepted)
    })
  }
}
