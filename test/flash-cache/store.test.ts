// The flash cache's API: what put/get/delete/pin promise, the bounds and what
// happens at them, streaming reads, the write budget, reopening.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CanopyError } from '../../src/errors'
import { FlashCache, type FlashCacheOptions } from '../../src/flash-cache'
import { createSeededRandom, FileFlash, SimClock, SimFlash, type Flash, type FlashGeometry } from '../../src/hal'
import { CACHE_PENDING_WRITES_MAX, CACHE_READ_CHUNK_BYTES } from '../../src/limits'
import { testSeed } from '../helpers/seed'
import { tempDir } from '../helpers/tmp'
import { sha } from './workload'

const G: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 4096, blockCount: 16 }

const opts = (extra: Partial<FlashCacheOptions> = {}): FlashCacheOptions =>
  ({ clock: new SimClock(), bytesMax: 20_000, piecesMax: 100, writeBudgetBytesPerDay: 1 << 30, ...extra })

const piece = (n: number, size = 100): Buffer => {
  const b = Buffer.alloc(size, n & 0xff)
  b.writeUInt32LE(n, 0)
  return b
}

async function code (p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    assert.ok(CanopyError.is(err), `a coded error, got ${String(err)}`)
    return err.code
  }
  return 'none'
}

test('put, get, has, sizeOf, delete; a put resolves once durable and survives a power cut', async () => {
  const flash = new SimFlash(G, { unsynced: 'drop' })
  const cache = await FlashCache.open(flash, opts())
  const a = piece(1)
  await cache.put(sha(a), a)
  assert.ok(cache.has(sha(a)))
  assert.is(cache.sizeOf(sha(a)), 100)
  assert.equal(await cache.get(sha(a)), a)
  assert.equal(await cache.get(Buffer.from(sha(a), 'hex')), a, 'hashes as bytes too')
  assert.is(await cache.get(sha(piece(2))), undefined)
  await cache.put(sha(a), a) // idempotent
  assert.is(cache.stats().pieces, 1)

  const recovered = await FlashCache.open(flash.reboot(), opts())
  assert.equal(await recovered.get(sha(a)), a, 'acknowledged means durable')
  assert.ok(await recovered.delete(sha(a)))
  assert.not.ok(recovered.has(sha(a)))
  assert.not.ok(await recovered.delete(sha(a)), 'deleting twice says it was not there')
  const again = await FlashCache.open(flash.reboot(), opts())
  assert.not.ok(again.has(sha(a)), 'an acknowledged delete is durable')
})

test('bytes that do not match their hash are refused and nothing is stored', async () => {
  const cache = await FlashCache.open(new SimFlash(G), opts())
  const a = piece(1)
  assert.is(await code(cache.put(sha(piece(2)), a)), 'CACHE_HASH_MISMATCH')
  assert.is(cache.stats().pieces, 0)
  assert.is(await code(cache.put('zz', a)), 'INPUT_INVALID')
  assert.is(await code(cache.put(new Uint8Array(31), a)), 'INPUT_INVALID')
  assert.is(await code(() => cache.has('not a hash')), 'INPUT_INVALID')
  assert.is(await code(cache.get(sha(a).slice(1))), 'INPUT_INVALID')
  const big = Buffer.alloc(cache.pieceBytesMax + 1)
  assert.is(await code(cache.put(sha(big), big)), 'CACHE_PIECE_TOO_LARGE')
  const largest = Buffer.alloc(cache.pieceBytesMax, 7)
  await cache.put(sha(largest), largest)
  assert.equal(await cache.get(sha(largest)), largest, 'the largest piece fits one block')
})

test('a buffer changed while its put waits is refused, never stored under the old name', async () => {
  const cache = await FlashCache.open(new SimFlash(G), opts())
  const a = piece(5)
  const name = sha(a)
  const p = cache.put(name, a)
  a.fill(0) // the caller owns its buffer until put settles; breaking that must not corrupt the store
  assert.is(await code(p), 'CACHE_HASH_MISMATCH')
  assert.not.ok(cache.has(name))
})

test('eviction by least recent use keeps the byte bound', async () => {
  const evicted: string[] = []
  const cache = await FlashCache.open(new SimFlash(G), opts({ bytesMax: 300, onEvict: (h) => evicted.push(h) }))
  const [a, b, c, d] = [piece(1), piece(2), piece(3), piece(4)]
  await cache.put(sha(a), a)
  await cache.put(sha(b), b)
  await cache.put(sha(c), c)
  await cache.get(sha(a)) // a is now the most recently used
  await cache.put(sha(d), d)
  assert.equal(evicted, [sha(b)], 'the least recently used piece goes')
  assert.equal([...cache.hashes()], [sha(c), sha(a), sha(d)], 'least recently used first')
  assert.ok(cache.stats().bytes <= 300)
  assert.is(cache.stats().evictions, 1)
})

test('the piece count bound', async () => {
  const cache = await FlashCache.open(new SimFlash(G), opts({ piecesMax: 3 }))
  for (let i = 0; i < 10; i++) await cache.put(sha(piece(i, 10)), piece(i, 10))
  assert.is(cache.stats().pieces, 3)
  assert.equal([...cache.hashes()], [7, 8, 9].map((i) => sha(piece(i, 10))))
})

test('pinned pieces are never evicted; when everything is pinned a put is refused', async () => {
  const cache = await FlashCache.open(new SimFlash(G), opts({ bytesMax: 300 }))
  const [a, b, c, d] = [piece(1), piece(2), piece(3), piece(4)]
  cache.pin(sha(a)) // before it is stored: a download in progress
  await cache.put(sha(a), a)
  await cache.put(sha(b), b)
  cache.pin(sha(b))
  cache.pin(sha(b))
  await cache.put(sha(c), c)
  cache.pin(sha(c))
  assert.is(await code(cache.put(sha(d), d)), 'CACHE_FULL')
  assert.ok(cache.has(sha(a)) && cache.has(sha(b)) && cache.has(sha(c)))
  cache.unpin(sha(b))
  assert.is(await code(cache.put(sha(d), d)), 'CACHE_FULL', 'pins are counted')
  cache.unpin(sha(b))
  await cache.put(sha(d), d)
  assert.not.ok(cache.has(sha(b)), 'unpinned, it is the one evicted')
  assert.ok(cache.has(sha(a)) && cache.has(sha(c)))
  assert.is(cache.stats().pinned, 2)
  assert.is(await code(cache.put(sha(piece(9, 400)), piece(9, 400))), 'CACHE_FULL', 'a piece larger than the bound')
})

test('stored bytes stay within the bound plus one piece at every instant of a random workload', async () => {
  const seed = testSeed('cache bound', 4)
  const r = createSeededRandom(seed)
  const cache = await FlashCache.open(new SimFlash(G), opts({ bytesMax: 5000, piecesMax: 30 }))
  let maxSeen = 0
  for (let i = 0; i < 600; i++) {
    const size = 1 + r.int(cache.pieceBytesMax)
    const b = r.bytes(size)
    const x = r.float()
    if (x < 0.7) await cache.put(sha(b), b).catch((err) => { if (!CanopyError.is(err, 'CACHE_FULL')) throw err })
    else if (x < 0.85) [...cache.hashes()].slice(0, 1).forEach((h) => { cache.pin(h) })
    else [...cache.hashes()].slice(-1).forEach((h) => { cache.unpin(h) })
    const s = cache.stats()
    maxSeen = Math.max(maxSeen, s.bytes)
    assert.ok(s.bytes <= 5000 + s.pieceBytesMax && s.pieces <= 30)
  }
  assert.ok(maxSeen > 3000, 'the bound was reached')
})

test('streaming read: whole pieces and ranges, chunk by chunk', async () => {
  const big: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 1 << 20, blockCount: 8 }
  const cache = await FlashCache.open(new SimFlash(big), opts({ bytesMax: 2 << 20 }))
  const data = createSeededRandom(3).bytes(600_000)
  await cache.put(sha(data), data)
  const collect = async (s: NodeJS.ReadableStream): Promise<{ bytes: Buffer, chunks: number }> => {
    const parts: Buffer[] = []
    await pipeline(s, new Writable({ write (c, _e, cb) { parts.push(c as Buffer); cb() } }))
    return { bytes: Buffer.concat(parts), chunks: parts.length }
  }
  const whole = await collect((await cache.readStream(sha(data)))!)
  assert.equal(whole.bytes, data)
  assert.ok(whole.chunks >= Math.ceil(600_000 / CACHE_READ_CHUNK_BYTES), 'bounded chunks')
  const part = await collect((await cache.readStream(sha(data), { start: 70_000, end: 200_001 }))!)
  assert.equal(part.bytes, data.subarray(70_000, 200_001))
  assert.is((await collect((await cache.readStream(sha(data), { start: 5, end: 5 }))!)).bytes.length, 0)
  assert.is(await code(cache.readStream(sha(data), { start: 10, end: 600_001 })), 'INPUT_INVALID')
  assert.is(await cache.readStream(sha(piece(1))), undefined)
})

test('power-of-two pieces in power-of-two blocks pack the flash: a piece spans a block boundary', async () => {
  const flash = new SimFlash(G)
  const cache = await FlashCache.open(flash, opts({ bytesMax: 40_000 }))
  const pieces = Array.from({ length: 18 }, (_, i) => createSeededRandom(i).bytes(2048))
  for (const p of pieces) await cache.put(sha(p), p)
  const s = cache.stats()
  assert.is(s.pieces, 18, 'nothing evicted')
  assert.ok(s.writes.splitPieces >= 8, `${s.writes.splitPieces} pieces split`)
  // Two 2 KiB pieces cannot both fit one 4 KiB block with headers; spanning uses ~10 blocks, not 18.
  assert.ok(s.flash.blockCount - 2 - s.flash.freeBlocks <= 11, `blocks in use: ${s.flash.blockCount - 2 - s.flash.freeBlocks}`)
  for (const p of pieces) assert.equal(await cache.get(sha(p)), p)
  const collect = async (r: NodeJS.ReadableStream): Promise<Buffer> => { const parts: Buffer[] = []; for await (const c of r) parts.push(c as Buffer); return Buffer.concat(parts) }
  assert.equal(await collect((await cache.readStream(sha(pieces[3]!), { start: 1000, end: 2048 }))!), pieces[3]!.subarray(1000))
  const again = await FlashCache.open(flash.reboot(), opts({ bytesMax: 40_000 }))
  for (const p of pieces) assert.equal(await again.get(sha(p)), p)
})

test('queued writes and pins are bounded', async () => {
  const cache = await FlashCache.open(new SimFlash(G), opts())
  const puts = Array.from({ length: CACHE_PENDING_WRITES_MAX + 5 }, (_, i) => cache.put(sha(piece(i, 20)), piece(i, 20)).then(() => 'ok', (err) => (err as CanopyError).code))
  const results = await Promise.all(puts)
  assert.ok(results.filter((r) => r === 'LIMIT_REACHED').length >= 5, 'the queue refuses beyond its bound')
  assert.ok(results.filter((r) => r === 'ok').length >= CACHE_PENDING_WRITES_MAX - 1)
  for (let i = 0; i < 65_536; i++) cache.pin(Buffer.alloc(32, 0).fill(i & 0xff, 0, 1).fill((i >> 8) & 0xff, 1, 2))
  assert.is(await code(() => cache.pin(Buffer.alloc(32, 0xee))), 'LIMIT_REACHED')
})

test('reads run beside writes: while compaction moves pieces, every get is the piece or nothing', async () => {
  const seed = testSeed('cache concurrent reads', 8)
  const r = createSeededRandom(seed)
  const cache = await FlashCache.open(new SimFlash(G), opts({ bytesMax: 12_000, piecesMax: 60 }))
  const pool = Array.from({ length: 80 }, (_, i) => { const b = r.bytes(50 + r.int(900)); b[0] = i; return b })
  let served = 0
  for (let round = 0; round < 30; round++) {
    const writes = pool.slice(0, 10 + r.int(60)).filter(() => r.float() < 0.5).map((b) => cache.put(sha(b), b).catch(() => {}))
    const reads = pool.map(async (b) => {
      const got = await cache.get(sha(b))
      if (got !== undefined) { assert.equal(got, b); served++ }
    })
    await Promise.all([...writes, ...reads])
  }
  await cache.flush()
  assert.ok(cache.stats().compactions > 0 && served > 100, `compactions ${cache.stats().compactions}, served ${served}`)
})

test('close writes a checkpoint: the next open replays (almost) nothing; without checkpoints a full scan finds the same', async () => {
  const flash = new SimFlash(G, { unsynced: 'drop' })
  const cache = await FlashCache.open(flash, opts())
  for (let i = 0; i < 40; i++) await cache.put(sha(piece(i, 300)), piece(i, 300))
  for (let i = 0; i < 40; i += 3) await cache.delete(sha(piece(i, 300)))
  const held = [...cache.hashes()].sort()
  await cache.close()
  assert.is(await code(cache.put(sha(piece(1)), piece(1))), 'CLOSED')
  assert.is(await code(cache.get(sha(piece(1)))), 'CLOSED')

  const reopened = await FlashCache.open(flash.reboot(), opts())
  assert.is(reopened.recovery.mode, 'checkpoint')
  assert.ok(reopened.recovery.replayedRecords <= 2, `replayed ${reopened.recovery.replayedRecords} (the checkpoint's own parts)`)
  assert.equal([...reopened.hashes()].sort(), held)
  assert.equal([...reopened.hashes()], [...cache.hashes()], 'recency order survives a clean close')

  // Wipe both anchor slots: recovery falls back to replaying every segment.
  const raw = flash.reboot()
  await raw.erase(0); await raw.erase(1); await raw.sync()
  const scanned = await FlashCache.open(raw.reboot(), opts())
  assert.is(scanned.recovery.mode, 'scan')
  assert.equal([...scanned.hashes()].sort(), held)
})

test('the write budget is tracked over a sliding 24 hours', async () => {
  const clock = new SimClock()
  const cache = await FlashCache.open(new SimFlash(G), opts({ clock, writeBudgetBytesPerDay: 5000 }))
  for (let i = 0; i < 10; i++) await cache.put(sha(piece(i, 300)), piece(i, 300))
  const s = cache.stats().writes
  assert.ok(s.budget.last24hBytes >= 3000 && s.budget.last24hBytes === s.bytesProgrammed)
  assert.ok(s.budget.overBudget === s.budget.last24hBytes > 5000)
  for (let i = 10; i < 30; i++) await cache.put(sha(piece(i, 300)), piece(i, 300))
  assert.ok(cache.stats().writes.budget.overBudget)
  assert.is(cache.stats().writes.budget.exceeded, 1)
  await clock.advance(25 * 3600 * 1000)
  assert.is(cache.stats().writes.budget.last24hBytes, 0, 'yesterday no longer counts')
  assert.not.ok(cache.stats().writes.budget.overBudget)
  assert.ok(cache.stats().writes.amplification >= 1)
})

test('a flash too small for the cache is refused with a coded error', async () => {
  assert.is(await code(FlashCache.open(new SimFlash({ readBytes: 1, programBytes: 1, blockBytes: 512, blockCount: 8 }), opts())), 'CONFIG_INVALID')
  assert.is(await code(FlashCache.open(new SimFlash({ ...G, blockCount: 5 }), opts())), 'CONFIG_INVALID')
  assert.is(await code(FlashCache.open(new SimFlash(G), opts({ piecesMax: 0 }))), 'CONFIG_INVALID')
})

test('on the Linux flash twin: put, close, reopen in a new process-like handle', async () => {
  const dir = tempDir()
  try {
    const geometry: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 64 * 1024, blockCount: 12 }
    const cache = await FlashCache.open(await FileFlash.open(dir.path, geometry), opts({ bytesMax: 300_000 }))
    const pieces = Array.from({ length: 30 }, (_, i) => piece(i, 5000 + i))
    for (const p of pieces) await cache.put(sha(p), p)
    await cache.close()
    const again = await FlashCache.open(await FileFlash.open(dir.path, geometry), opts({ bytesMax: 300_000 }))
    for (const p of pieces) {
      const got = await again.get(sha(p))
      if (got !== undefined) assert.equal(got, p)
    }
    assert.ok(again.stats().pieces >= 25)
    await again.close()
  } finally {
    dir.remove()
  }
})

/** The same flash, with syncs that take a turn of the event loop to come back (as an fsync does). */
const slowSyncs = (flash: SimFlash): Flash => ({
  geometry: flash.geometry,
  read: async (b, o, l) => await flash.read(b, o, l),
  program: async (b, o, d) => await flash.program(b, o, d),
  erase: async (b) => await flash.erase(b),
  close: async () => await flash.close(),
  async sync () {
    const done = flash.sync()
    done.catch(() => {}) // seen below, after the turn
    await new Promise((resolve) => setImmediate(resolve))
    await done
  }
})

test('group commit: puts at once share syncs, each acknowledged only once a sync covers it; a failed sync acknowledges none of its puts', async () => {
  const flash = new SimFlash(G, { unsynced: 'drop' })
  const cache = await FlashCache.open(slowSyncs(flash), opts({ bytesMax: 40_000 }))
  /** What a reboot right now would find. */
  const durable = async (): Promise<FlashCache> => await FlashCache.open(SimFlash.fromImage(G, flash.durableImage()), opts({ bytesMax: 40_000 }))
  const pieces = Array.from({ length: 24 }, (_, i) => piece(i, 400))
  const syncs = flash.stats.syncs
  const acked: Buffer[] = []
  await Promise.all(pieces.slice(0, 12).map(async (p) => {
    await cache.put(sha(p), p)
    acked.push(p)
    const after = await durable()
    assert.equal(await after.get(sha(p)), p, 'on flash when acknowledged')
  }))
  assert.is(acked.length, 12)
  assert.ok(flash.stats.syncs - syncs < 12, `${flash.stats.syncs - syncs} syncs for 12 puts`)

  // The next sync fails: every put waiting for it is refused and taken back out; the store goes on.
  flash.injectError('sync', 'EIO', { times: 1 })
  const results = await Promise.all(pieces.slice(12).map(async (p) => await cache.put(sha(p), p).then(() => 'ok', (err: unknown) => (err as CanopyError).code)))
  const failed = pieces.slice(12).filter((_, i) => results[i] !== 'ok')
  assert.ok(failed.length > 0 && results.every((r) => r === 'ok' || r === 'FLASH_IO'), results.join(' '))
  for (const p of failed) assert.not.ok(cache.has(sha(p)), 'a piece whose sync failed is not kept')
  const after = await durable()
  for (const [i, p] of pieces.slice(12).entries()) if (results[i] === 'ok') assert.equal(await after.get(sha(p)), p)
  for (const p of [...failed, ...pieces.slice(0, 2)]) await cache.put(sha(p), p)
  for (const p of pieces) assert.equal(await cache.get(sha(p)), p)
})

test.run()
