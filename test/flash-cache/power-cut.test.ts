// Power cut at every write (design.md target: 0 acknowledged pieces lost, 0
// bad pieces served). A seeded workload of 500 operations (puts, gets,
// deletes, pins; evictions, compactions and checkpoints follow from the
// bounds) runs on the simulated flash, cut after each program/erase/sync in
// turn, with unsynced writes kept, dropped, torn or reordered. After each
// recovery the store is held to the model (workload.ts), and a second open
// must find the same pieces. Reads are checked by CRC-32 or SHA-256
// (verifyReads): each cut point of the long workload with one chosen by the
// seed, the short workload's pairs and the missing-sync check with both.
// CANOPY_FLASH_EXHAUSTIVE=1 runs all four unsynced policies and both read
// checks at every cut point instead of one chosen by the seed.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { FlashCache, type VerifyReads } from '../../src/flash-cache'
import { createSeededRandom, SimFlash, type UnsyncedPolicy } from '../../src/hal'
import { testSeed } from '../helpers/seed'
import { cacheOptions, check, GEOMETRY, Model, piecePool, runOps, script, VERIFY_MODES, type Op } from './workload'

const POLICIES: UnsyncedPolicy[] = ['keep', 'drop', 'torn', 'reorder']
const BOUND = { bytes: 6000, pieces: 24 }
const exhaustive = process.env.CANOPY_FLASH_EXHAUSTIVE === '1'

interface Outcome { writes: number, held: Set<string> }

/** Run ops (then opsAfter after a reboot) with cuts after write `cut` and, in the second life, after write `cut2`. */
async function cutRun (pool: Buffer[], ops: Op[], cut: number | null, policy: UnsyncedPolicy, seed: number, opsAfter: Op[] = [], cut2: number | null = null, options: { skipAckSync?: boolean, verifyReads?: VerifyReads } = {}): Promise<Outcome> {
  const model = new Model(pool)
  const opts = (): ReturnType<typeof cacheOptions> => cacheOptions(model, { unsafeSkipAckSync: options.skipAckSync, verifyReads: options.verifyReads })
  let flash = new SimFlash(GEOMETRY, { unsynced: policy, seed })
  if (cut !== null) flash.cutPowerAfter(cut)
  const first = await FlashCache.open(flash, opts())
  await runOps(first, ops, pool, model, BOUND)
  await first.flush()
  const writes = flash.writeCount
  const where = `seed ${seed} cut ${cut ?? '-'}${cut2 === null ? '' : `+${cut2}`} (${policy}, reads by ${options.verifyReads ?? 'crc32'})`

  flash = flash.reboot()
  if (cut2 !== null) flash.cutPowerAfter(cut2)
  const second = await FlashCache.open(flash, opts())
  await second.flush()
  if (opsAfter.length > 0) {
    await runOps(second, opsAfter, pool, model, BOUND)
    await second.flush()
    flash = flash.reboot()
  }
  const recovered = opsAfter.length > 0 ? await FlashCache.open(flash, opts()) : second
  await recovered.flush()
  const held = await check(recovered, model, BOUND, where)

  // A second open of the same flash finds the same state.
  flash = flash.reboot()
  const again = await FlashCache.open(flash, cacheOptions(undefined, { verifyReads: options.verifyReads }))
  assert.equal(new Set(again.hashes()), new Set(held.keys()), `${where}: a second open finds the same pieces`)
  return { writes, held: new Set(held.keys()) }
}

test('cut after every single write of a 500-operation workload', async () => {
  const seed = testSeed('power-cut every write', 11)
  const pool = piecePool(seed)
  const ops = script(seed, 500, pool.length)
  const r = createSeededRandom(seed)

  // The uncut run: how many writes there are, and that the workload exercises what it should.
  const flash = new SimFlash(GEOMETRY, { unsynced: 'drop' })
  const model = new Model(pool)
  const cache = await FlashCache.open(flash, cacheOptions(model))
  await runOps(cache, ops, pool, model, BOUND)
  await cache.flush()
  const s = cache.stats()
  assert.ok(s.evictions > 20 && s.compactions > 20 && s.checkpoints.written > 5 && s.tombstones > 0 && s.writes.splitPieces > 20,
    `workload evicts, compacts, checkpoints, deletes and splits pieces: ${JSON.stringify({ e: s.evictions, c: s.compactions, k: s.checkpoints.written, t: s.tombstones, p: s.writes.splitPieces })}`)
  assert.ok(flash.stats.programs > 0 && flash.stats.erases > 0 && flash.stats.syncs > 0)
  const writes = flash.writeCount
  assert.ok(writes > 1000, `${writes} cut points`)

  // Each cut point once, with unsynced writes treated one way and reads checked one way, both chosen by
  // the seed (every way at every point with CANOPY_FLASH_EXHAUSTIVE=1).
  let runs = 0
  const used = new Set<string>()
  for (let cut = 1; cut <= writes; cut++) {
    const policies = exhaustive ? POLICIES : [POLICIES[r.int(POLICIES.length)]!]
    const modes = exhaustive ? VERIFY_MODES : [VERIFY_MODES[r.int(VERIFY_MODES.length)]!]
    for (const policy of policies) {
      for (const verifyReads of modes) {
        await cutRun(pool, ops, cut, policy, seed * 100_003 + cut, [], null, { verifyReads })
        used.add(verifyReads)
        runs++
      }
    }
  }
  assert.ok(runs >= writes && used.size === VERIFY_MODES.length)
})

test('every pair of cut points on a short workload, including cuts in the writes right after recovery', async () => {
  const seed = testSeed('power-cut pairs', 5)
  const pool = piecePool(seed, 30, 300)
  const ops = script(seed, 24, pool.length)
  const after = script(seed + 1, 8, pool.length)
  const r = createSeededRandom(seed)
  const { writes } = await cutRun(pool, ops, null, 'drop', seed)
  let pairs = 0
  for (let cut = 1; cut <= writes; cut++) {
    const policy = POLICIES[r.int(POLICIES.length)]!
    // How many writes the second life (recovery's own writes, then the rest of the script) makes.
    const probe = new SimFlash(GEOMETRY, { unsynced: policy, seed: cut })
    probe.cutPowerAfter(cut)
    const m = new Model(pool)
    await runOps(await FlashCache.open(probe, cacheOptions(m)), ops, pool, m, BOUND)
    const second = probe.reboot()
    const c = await FlashCache.open(second, cacheOptions(m))
    await c.flush()
    await runOps(c, after, pool, m, BOUND)
    await c.flush()
    const writes2 = second.writeCount
    for (let cut2 = 1; cut2 <= writes2 + 1; cut2++) {
      for (const verifyReads of VERIFY_MODES) await cutRun(pool, ops, cut, policy, cut, after, cut2, { verifyReads })
      pairs++
    }
  }
  assert.ok(pairs > writes, `${pairs} pairs`)
})

test('the suite fails when the sync before an acknowledgement is skipped', async () => {
  const seed = testSeed('power-cut missing sync', 3)
  const pool = piecePool(seed)
  const ops = script(seed, 120, pool.length)
  for (const verifyReads of VERIFY_MODES) {
    let caught = 0
    let tried = 0
    for (let cut = 1; cut <= 200 && caught === 0; cut++) {
      tried++
      try {
        await cutRun(pool, ops, cut, 'drop', cut, [], null, { skipAckSync: true, verifyReads })
      } catch (err) {
        if ((err as Error).name !== 'Assertion') throw err
        assert.match((err as Error).message, /acknowledged piece .* survived/)
        caught++
      }
    }
    assert.ok(caught > 0, `reads by ${verifyReads}: a lost acknowledged piece was detected (after ${tried} cut points)`)
  }
})

test.run()
