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
    throw new CanopyError('CONFIG_INVALID', `config field "cache.bytesMax": got ${c.bytesMax}, expected at most ${max} (7/8 of a flash area of ${c.blockCount} blocks of ${c.blockBytes} bytes; raise cache.blockCount)`,
      { detail: { field: 'cache.bytesMax' } })
  }
}

/** The cache's metrics: canopy_cache_NAME, a counter when NAME ends in _total, else a gauge. */
const METRICS: Array<[string, string, (s: FlashCacheStats) => number]> = [
  ['pieces', 'Pieces in the flash cache.', (s) => s.pieces],
  ['bytes', 'Bytes of pieces in the flash cache.', (s) => s.bytes],
  ['bytes_max', 'Bound on the flash cache (lowered when blocks go bad).', (s) => s.bytesMax],
  ['pinned', 'Pinned piece hashes.', (s) => s.pinned],
  ['bad_blocks', 'Flash blocks retired this session (failed program or erase).', (s) => s.flash.badBlocks + s.flash.deadBlocks],
  ['free_blocks', 'Erased flash blocks available.', (s) => s.flash.freeBlocks],
  ['written_last_24h_bytes', 'Bytes programmed to flash in the last 24 hours.', (s) => s.writes.budget.last24hBytes],
  ['write_budget_bytes_per_day', 'The configured write budget.', (s) => s.writes.budget.bytesPerDay],
  ['recovery_seconds', 'Time the last open spent recovering.', (s) => s.recovery.ms / 1000],
  ['evictions_total', 'Pieces evicted to keep the bounds.', (s) => s.evictions],
  ['corrupt_dropped_total', 'Pieces found damaged on read and dropped.', (s) => s.corruptDropped],
  ['read_errors_total', 'Flash read errors.', (s) => s.readErrors],
  ['flash_written_bytes_total', 'Bytes programmed to flash (lifetime).', (s) => s.writes.bytesProgrammed],
  ['stored_bytes_total', 'Piece bytes accepted (lifetime).', (s) => s.writes.bytesAccepted]
]

export class FlashCacheService implements Service {
  readonly name = 'cache'
  /** The open cache; null before start, when disabled, or when it could not be opened. */
  cache: FlashCache | null = null
  #error: string | null = null
  readonly #config: Config['cache']
  readonly #hal: Hal
  readonly #log: Logger

  constructor (config: Config['cache'], hal: Hal, log: Logger, metrics: Metrics) {
    this.#config = config
    this.#hal = hal
    this.#log = log
    const up = metrics.gauge('canopy_cache_up', '1 when the flash cache is open.')
    const all = METRICS.map(([name, help, get]) => [metrics[name.endsWith('_total') ? 'counter' : 'gauge'](`canopy_cache_${name}`, help), get] as const)
    metrics.onCollect(() => {
      up.set(this.cache === null ? 0 : 1)
      const s = this.cache?.stats()
      if (s !== undefined) for (const [m, get] of all) m.set(get(s))
    })
  }

  async start (): Promise<void> {
    const c = this.#config
    if (!c.enabled) return
    checkCacheConfig(c)
    try {
      const flash = await this.#hal.openFlash(CACHE_FLASH_NAME, cacheGeometry(c))
      this.cache = await FlashCache.open(flash, { ...c, clock: this.#hal.clock, log: this.#log })
    } catch (err) {
      const e = CanopyError.from(err, 'FLASH_IO')
      this.#error = `${e.code}: ${e.message}`
      this.#log.error('flash cache unavailable; running without it', { err: e })
    }
  }

  async stop (deadlineMs: number): Promise<void> {
    const cache = this.cache
    if (cache === null) return
    let timer: { cancel (): void } | undefined
    try {
      await Promise.race([cache.close(), new Promise<void>((resolve) => { timer = this.#hal.clock.setTimeout(resolve, deadlineMs) })])
    } finally {
      timer?.cancel()
    }
  }

  status (): unknown {
    if (!this.#config.enabled) return { enabled: false }
    if (this.cache === null) return { enabled: true, error: this.#error ?? 'not open yet' }
    const s = this.cache.stats()
    return { ...s, writes: { ...s.writes, amplification: Math.round(s.writes.amplification * 1000) / 1000 }, recovery: { ...s.recovery, ms: Math.round(s.recovery.ms * 10) / 10 } }
  }
}
