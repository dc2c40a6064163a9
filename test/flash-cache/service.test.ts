// The flash cache inside the agent: opened at start from the data directory,
// its stats in /api/status and /metrics, closed at stop; a config that cannot
// work names its field; a flash area that cannot be opened is reported and
// the agent runs on without it.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildAgent } from '../../src/agent'
import { checkConfig } from '../../src/config'
import { CanopyError } from '../../src/errors'
import { checkCacheConfig, FlashCacheService } from '../../src/flash-cache'
import { createSimHal } from '../../src/hal'
import { memoryLogger } from '../../src/log'
import { httpRequest } from '../helpers/http'
import { parsePrometheus } from '../helpers/prometheus'
import { sha } from './workload'

const SMALL = { blockBytes: 64 * 1024, blockCount: 16, bytesMax: 500_000, piecesMax: 100 }
const config = (cache: Record<string, unknown> = SMALL) => checkConfig({ http: { host: '127.0.0.1', port: 0 }, cache })

const cacheOf = (agent: { services: Array<{ name: string }> }): FlashCacheService =>
  agent.services.find((s) => s.name === 'cache') as FlashCacheService

test('the agent opens the cache at start; stats in /api/status and /metrics; it survives a restart', async () => {
  const hal = createSimHal({ seed: 3 })
  const agent = await buildAgent(config(), hal, memoryLogger().logger)
  await agent.start()
  try {
    const cache = cacheOf(agent).cache!
    assert.ok(cache !== null, 'open after start')
    const piece = Buffer.from('a piece for the status page')
    await cache.put(sha(piece), piece)
    const status = (await httpRequest(`${agent.url}api/status`)).json()
    assert.is(status.cache.pieces, 1)
    assert.is(status.cache.bytes, piece.length)
    assert.is(status.cache.bytesMax, SMALL.bytesMax)
    assert.is(status.cache.flash.blockCount, SMALL.blockCount)
    assert.ok(status.cache.writes.bytesProgrammed > piece.length)
    assert.is(status.cache.recovery.mode, 'empty')
    const { samples, types } = parsePrometheus((await httpRequest(`${agent.url}metrics`)).text)
    const value = (name: string): number | undefined => samples.find((s) => s.name === name)?.value
    assert.is(value('canopy_cache_pieces'), 1)
    assert.is(value('canopy_cache_up'), 1)
    assert.is(value('canopy_cache_bytes_max'), SMALL.bytesMax)
    assert.ok(value('canopy_cache_flash_written_bytes_total')! > 0)
    assert.is(types.get('canopy_cache_evictions_total'), 'counter')
    const page = await httpRequest(agent.url)
    assert.ok(page.text.includes('cache'))
  } finally {
    await agent.stop(1000)
  }
  // Same device, new agent: the piece is still there (the flash outlived the process).
  const again = await buildAgent(config(), hal, memoryLogger().logger)
  await again.start()
  try {
    assert.is(cacheOf(again).cache!.stats().pieces, 1)
    assert.is(cacheOf(again).cache!.recovery.mode, 'checkpoint', 'stop closed the cache with a checkpoint')
  } finally {
    await again.stop(1000)
  }
})

test('a bound the flash area cannot hold is a config error naming cache.bytesMax', async () => {
  const hal = createSimHal({ seed: 4 })
  const agent = await buildAgent(config({ ...SMALL, bytesMax: 10_000_000 }), hal, memoryLogger().logger)
  try {
    await agent.start()
    assert.unreachable('start must fail')
  } catch (err) {
    assert.ok(CanopyError.is(err, 'CONFIG_INVALID'))
    assert.match(err.message, /cache\.bytesMax/)
  } finally {
    await agent.stop(500)
  }
})

test('a flash area that cannot be opened is reported; the agent runs without the cache', async () => {
  const hal = createSimHal({ seed: 5 })
  const broken = { ...hal, openFlash: async () => { throw new CanopyError('FLASH_GEOMETRY_MISMATCH', 'the flash on disk has another geometry') } }
  const { logger, lines } = memoryLogger()
  const agent = await buildAgent(config(), broken, logger)
  await agent.start()
  try {
    const status = (await httpRequest(`${agent.url}api/status`)).json()
    assert.match(status.cache.error, /FLASH_GEOMETRY_MISMATCH/)
    const { samples } = parsePrometheus((await httpRequest(`${agent.url}metrics`)).text)
    assert.is(samples.find((s) => s.name === 'canopy_cache_up')?.value, 0)
    assert.ok(lines.some((l) => l.level === 'error' && String(l.msg).includes('flash cache')))
  } finally {
    await agent.stop(500)
  }
})

test('cache.enabled false: no cache, said so', async () => {
  const agent = await buildAgent(config({ enabled: false }), createSimHal({ seed: 6 }), memoryLogger().logger)
  await agent.start()
  try {
    assert.equal((await httpRequest(`${agent.url}api/status`)).json().cache, { enabled: false })
  } finally {
    await agent.stop(500)
  }
})

test('the defaults are consistent: the default bound fits the default flash area', () => {
  const c = checkConfig({})
  assert.ok(c.cache.enabled && c.cache.bytesMax > 0)
  checkCacheConfig(c.cache)
})

test.run()
