// Faults other than power loss: EIO and ENOSPC at each operation (once, and
// from then on), bit rot, littlefs's five bad-block behaviours, garbage on the
// flash at open. Always: no crash, only coded errors, no false
// acknowledgement, never a byte served that does not match its hash, and the
// store works again once the fault clears. Each test runs with reads checked
// by CRC-32 and by SHA-256.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, readdirSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CanopyError } from '../../src/errors'
import { FlashCache, type FlashCacheOptions, type VerifyReads } from '../../src/flash-cache'
import { createSeededRandom, FileFlash, SimFlash, type BadBlockKind, type FlashOp } from '../../src/hal'
import { testSeed } from '../helpers/seed'
import { tempDir } from '../helpers/tmp'
import { cacheOptions, check, GEOMETRY, Model, piecePool, runOps, script, sha, VERIFY_MODES, type Op } from './workload'

const BOUND = { bytes: 6000, pieces: 24 }
const FAULT_CODES = new Set(['FLASH_IO', 'FLASH_NO_SPACE', 'CACHE_FULL'])
const PERSISTENT = 1_000_000_000

// Every test runs with reads verified both ways (FlashCacheOptions.verifyReads): each record's commit CRC, and SHA-256.
let mode: VerifyReads = 'crc32'
const options = (model?: Model): FlashCacheOptions => cacheOptions(model, { verifyReads: mode })
function modeTest (name: string, fn: () => Promise<void>): void {
  for (const m of VERIFY_MODES) test(`${name} (reads verified by ${m})`, async () => { mode = m; await fn() })
}

/** Like runOps, but injected faults are expected: a failed op is simply not acknowledged. */
async function runFaulty (cache: FlashCache, ops: Op[], pool: Buffer[], model: Model): Promise<number> {
  let failures = 0
  for (const op of ops) {
    try {
      await runOps(cache, [op], pool, model, BOUND)
    } catch (err) {
      assert.ok(CanopyError.is(err) && FAULT_CODES.has(err.code), `only coded fault errors, got ${String(err)}`)
      failures++
    }
  }
  return failures
}

/** A fresh piece must go in and come back: the store works. The model learns of it. */
async function works (cache: FlashCache, n: number, model?: Model): Promise<void> {
  const b = Buffer.from(`works ${n} ${'x'.repeat(n % 97)}`)
  model?.byKey.set(sha(b), b)
  model?.putStarted(sha(b))
  await cache.put(sha(b), b)
  model?.putAcked(sha(b))
  assert.equal(await cache.get(sha(b)), b)
}

async function faultRun (seed: number, pool: Buffer[], ops: Op[], op: FlashOp, code: 'EIO' | 'ENOSPC', skip: number, times: number): Promise<void> {
  const where = `${op} ${code} after ${skip} x${times === 1 ? 1 : 'all'}`
  const model = new Model(pool)
  let flash = new SimFlash(GEOMETRY, { unsynced: 'drop', seed })
  const cache = await FlashCache.open(flash, options(model))
  flash.injectError(op, code, { skip, times })
  await runFaulty(cache, ops, pool, model)
  await cache.flush()
  flash.clearErrors()
  if (times === 1) await works(cache, skip, model).catch((err) => {
    // A transient read error may have retired blocks: the store goes on with less room, or says it is full.
    if (!CanopyError.is(err, 'CACHE_FULL')) throw err
  })
  await cache.flush()
  // Power off (unsynced writes dropped), power on with the fault gone.
  flash = flash.reboot()
  const recovered = await FlashCache.open(flash, options(model))
  await recovered.flush()
  await check(recovered, model, BOUND, where)
  await works(recovered, skip + 1, model)
}

modeTest('EIO and ENOSPC at each operation, once and from then on', async () => {
  const seed = testSeed('cache faults', 21)
  const pool = piecePool(seed, 60, 300)
  const ops = script(seed, 120, pool.length)
  const probe = new SimFlash(GEOMETRY)
  const m = new Model(pool)
  const c = await FlashCache.open(probe, options(m))
  await runOps(c, ops, pool, m, BOUND)
  await c.flush()
  const counts: Record<FlashOp, number> = { read: probe.stats.reads, program: probe.stats.programs, erase: probe.stats.erases, sync: probe.stats.syncs }
  const cases: Array<[FlashOp, 'EIO' | 'ENOSPC']> = [['program', 'EIO'], ['program', 'ENOSPC'], ['erase', 'EIO'], ['sync', 'EIO'], ['sync', 'ENOSPC'], ['read', 'EIO']]
  let runs = 0
  for (const [op, code] of cases) {
    const stride = op === 'read' ? 3 : 1
    for (let skip = 0; skip < counts[op]; skip += stride) { await faultRun(seed, pool, ops, op, code, skip, 1); runs++ }
    for (let skip = 0; skip < counts[op]; skip += stride * 4) { await faultRun(seed, pool, ops, op, code, skip, PERSISTENT); runs++ }
  }
  assert.ok(runs > 300, `${runs} runs`)
})

modeTest('a read error at each read of an open: coded errors at most, and nothing lost once it clears', async () => {
  const seed = testSeed('cache faults at open', 22)
  const pool = piecePool(seed, 60, 300)
  const ops = script(seed, 150, pool.length)
  const model = new Model(pool)
  const flash = new SimFlash(GEOMETRY, { unsynced: 'drop' })
  const cache = await FlashCache.open(flash, options(model))
  await runOps(cache, ops, pool, model, BOUND)
  await cache.flush()
  let f = flash.reboot()
  const before = f.stats.reads
  await (await FlashCache.open(f, options(model))).flush()
  const reads = f.stats.reads - before
  assert.ok(reads > 10)
  for (let skip = 0; skip < reads; skip++) {
    f = f.reboot()
    f.injectError('read', 'EIO', { skip, times: 1 })
    try {
      const c2 = await FlashCache.open(f, options(model))
      // The session goes on: writes work, and whatever it could not read is not forgotten for good.
      await works(c2, 1000 + skip, model).catch((err) => { assert.ok(CanopyError.is(err)) })
      await c2.flush()
    } catch (err) {
      assert.ok(CanopyError.is(err), `coded: ${String(err)}`)
    }
    f.clearErrors()
    f = f.reboot()
    const c3 = await FlashCache.open(f, options(model))
    await c3.flush()
    await check(c3, model, BOUND, `read error ${skip} at open`)
  }
})

modeTest('bit rot in a stored piece is found before a byte is served, the piece dropped and counted', async () => {
  const flash = new SimFlash(GEOMETRY, { unsynced: 'drop' })
  const cache = await FlashCache.open(flash, options())
  const pool = piecePool(9, 12, 300)
  for (const b of pool) await cache.put(sha(b), b)
  const image = flash.durableImage()
  const victims = [pool[3]!, pool[7]!]
  for (const [i, b] of victims.entries()) {
    const at = image.indexOf(b.subarray(0, 40)) // the start of the piece (a split piece is not one run of bytes)
    assert.ok(at > 0)
    flash.flipBits(Math.floor((at + 10 + i) / GEOMETRY.blockBytes), (at + 10 + i) % GEOMETRY.blockBytes, 0x10)
  }
  assert.is(await cache.get(sha(victims[0]!)), undefined, 'damaged: not served')
  const stream = await cache.readStream(sha(victims[1]!))
  assert.is(stream, undefined, 'a stream verifies before its first byte')
  assert.is(cache.stats().corruptDropped, 2)
  assert.not.ok(cache.has(sha(victims[0]!)))
  for (const b of pool) if (!victims.includes(b)) assert.equal(await cache.get(sha(b)), b)
  await cache.flush()
  const again = await FlashCache.open(flash.reboot(), options())
  assert.not.ok(again.has(sha(victims[0]!)), 'a dropped piece does not come back at the next open')
})

modeTest('random bit flips anywhere on the flash: every open works and no wrong byte is ever served', async () => {
  const seed = testSeed('cache bit flips', 31)
  const r = createSeededRandom(seed)
  const pool = piecePool(seed, 60, 300)
  const byKey = new Map(pool.map((b) => [sha(b), b]))
  for (let round = 0; round < 60; round++) {
    const flash = new SimFlash(GEOMETRY, { unsynced: 'drop', seed: round })
    const model = new Model(pool)
    const cache = await FlashCache.open(flash, options(model))
    await runOps(cache, script(seed + round, 120, pool.length), pool, model, BOUND)
    await cache.flush()
    const flips = 1 + r.int(12)
    for (let i = 0; i < flips; i++) flash.flipBits(r.int(GEOMETRY.blockCount), r.int(GEOMETRY.blockBytes), 1 << r.int(8))
    const again = await FlashCache.open(flash.reboot(), options())
    for (const key of [...again.hashes(), ...byKey.keys()]) {
      const got = await again.get(key)
      if (got !== undefined) assert.equal(got, byKey.get(key), `round ${round}: served bytes match their hash`)
    }
    await works(again, round)
  }
})

modeTest("littlefs's five bad-block behaviours: the store goes on, and no damaged piece is served", async () => {
  const kinds: BadBlockKind[] = ['prog-error', 'erase-error', 'read-error', 'prog-noop', 'erase-noop']
  const seed = testSeed('cache bad blocks', 41)
  const pool = piecePool(seed, 60, 300)
  for (const kind of kinds) {
    // Bad from the start (found when first used), and going bad under data already written.
    for (const when of ['start', 'later'] as const) {
      const r = createSeededRandom(seed)
      const model = new Model(pool)
      const flash = new SimFlash(GEOMETRY, { unsynced: 'drop', seed })
      const cache = await FlashCache.open(flash, options(model))
      const ops = script(seed, 300, pool.length)
      const bad = [2 + r.int(6), 8 + r.int(6), 14 + r.int(6)]
      if (when === 'start') for (const b of bad) flash.setBadBlock(b, kind)
      await runFaulty(cache, ops.slice(0, 150), pool, model)
      if (when === 'later') for (const b of bad) flash.setBadBlock(b, kind)
      await runFaulty(cache, ops.slice(150), pool, model)
      await cache.flush()
      const s = cache.stats()
      const where = `${kind} (${when})`
      // erase-noop is invisible on a block that is already erased; read-error blocks are never written to
      if ((kind === 'prog-error' || kind === 'prog-noop' || kind === 'erase-error') && when === 'start') assert.ok(s.flash.badBlocks > 0, `${where}: bad blocks found (${JSON.stringify(s.flash)})`)
      for (const b of pool) {
        const got = await cache.get(sha(b)).catch((err) => { assert.is((err as CanopyError).code, 'FLASH_IO'); return undefined })
        if (got !== undefined) assert.equal(got, b, `${where}: served bytes are right`)
      }
      await works(cache, 1, model).catch((err) => { assert.is((err as CanopyError).code, 'FLASH_IO') })
      await cache.flush()
      const again = await FlashCache.open(flash.reboot(), options(model))
      await again.flush()
      if (kind === 'read-error' && when === 'later') {
        // Pieces in blocks that no longer read are unavailable (coded errors), never wrong.
        for (const key of again.hashes()) {
          const got = await again.get(key).catch(() => undefined)
          if (got !== undefined) assert.is(sha(got), key)
        }
      } else {
        await check(again, model, BOUND, where)
      }
      await works(again, 2, model).catch((err) => { assert.is((err as CanopyError).code, 'FLASH_IO') })
    }
  }
})

modeTest('garbage and truncated block files at open are skipped and counted', async () => {
  const dir = tempDir()
  try {
    const g = { readBytes: 16, programBytes: 16, blockBytes: 4096, blockCount: 12 }
    const cache = await FlashCache.open(await FileFlash.open(dir.path, g), options())
    const pool = piecePool(5, 30, 600)
    for (const b of pool) await cache.put(sha(b), b)
    await cache.close()
    const files = readdirSync(dir.path).filter((f) => f.startsWith('b')).sort()
    const r = createSeededRandom(5)
    // A block file that was never ours, one cut short, and a stray directory entry.
    writeFileSync(join(dir.path, 'b00000b'), r.bytes(3000))
    truncateSync(join(dir.path, files[files.length - 1]!), 1000)
    mkdirSync(join(dir.path, 'stray'))
    const again = await FlashCache.open(await FileFlash.open(dir.path, g), options())
    assert.ok(again.recovery.garbageBlocks >= 1 || again.recovery.invalidRecords >= 1, JSON.stringify(again.recovery))
    for (const key of again.hashes()) {
      const got = await again.get(key)
      if (got !== undefined) assert.is(sha(got), key)
    }
    assert.ok(again.stats().pieces > 0)
    await works(again, 3)
    await again.close()
  } finally {
    dir.remove()
  }
})

modeTest('random garbage in every block, slots included: open works, counts it, and the flash is usable', async () => {
  const r = createSeededRandom(testSeed('cache garbage', 51))
  for (let round = 0; round < 20; round++) {
    const image = r.bytes(GEOMETRY.blockBytes * GEOMETRY.blockCount)
    const flash = SimFlash.fromImage(GEOMETRY, image, { unsynced: 'drop' })
    const cache = await FlashCache.open(flash, options())
    assert.is(cache.stats().pieces, 0)
    assert.ok(cache.recovery.garbageBlocks >= GEOMETRY.blockCount - 2)
    for (let i = 0; i < 30; i++) await works(cache, i)
  }
})

test.run()
