// Committed images of the on-flash format (FORMAT.md, version 1). They are
// never regenerated, only added to: the writer must still produce them byte
// for byte, and every future reader must open them to the same pieces. A
// missing image is written once (and the test says so); a changed one fails.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FlashCache, type FlashCacheOptions } from '../../src/flash-cache'
import { SimClock, SimFlash, type FlashGeometry } from '../../src/hal'
import { sha } from './workload'

const DIR = join(__dirname, 'golden')
const G: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 1024, blockCount: 10 }

const options = (): FlashCacheOptions => ({ clock: new SimClock(), bytesMax: 3000, piecesMax: 20, writeBudgetBytesPerDay: 1 << 30, checkpointIntervalBytesMin: 1024 })
const pieceOf = (i: number): Buffer => Buffer.from(`golden piece ${i}; `.repeat(i + 1))

interface Golden { name: string, write (): Promise<SimFlash> }

const GOLDENS: Golden[] = [
  {
    // Puts, deletes, evictions, compactions, checkpoints, then a clean close.
    name: 'v1-clean',
    async write () {
      const flash = new SimFlash(G, { unsynced: 'drop', seed: 1 })
      const cache = await FlashCache.open(flash, options())
      for (let i = 0; i < 24; i++) await cache.put(sha(pieceOf(i)), pieceOf(i))
      await cache.delete(sha(pieceOf(20)))
      await cache.delete(sha(pieceOf(22)))
      await cache.get(sha(pieceOf(19)))
      await cache.close()
      return flash
    }
  },
  {
    // v1-clean, reopened, two more puts, then power lost in the middle of programming a third record (torn).
    name: 'v1-torn',
    async write () {
      const clean = await GOLDENS[0]!.write()
      const flash = SimFlash.fromImage(G, clean.durableImage(), { unsynced: 'torn', seed: 7 })
      const cache = await FlashCache.open(flash, options())
      await cache.put(sha(pieceOf(30)), pieceOf(30))
      await cache.put(sha(pieceOf(31)), pieceOf(31))
      await cache.flush() // background checkpointing done: the next write is the torn record itself
      const small = Buffer.from('golden torn piece')
      flash.cutPowerAfter(1)
      await cache.put(sha(small), small).catch(() => {})
      return flash.reboot()
    }
  }
]

interface Expected { geometry: FlashGeometry, pieces: string[], sizes: number[] }

for (const golden of GOLDENS) {
  test(`${golden.name}: today's writer produces the committed image byte for byte`, async () => {
    const image = (await golden.write()).durableImage()
    const path = join(DIR, `${golden.name}.img`)
    if (!existsSync(path)) {
      writeFileSync(path, image)
      const cache = await FlashCache.open(SimFlash.fromImage(G, image), options())
      const pieces = cache.hashes()
      const expected: Expected = { geometry: G, pieces, sizes: pieces.map((h) => cache.sizeOf(h)!) }
      writeFileSync(join(DIR, `${golden.name}.json`), JSON.stringify(expected, null, 2) + '\n')
      console.log(`  wrote new golden image ${path}: commit it`)
      return
    }
    const committed = readFileSync(path)
    assert.ok(committed.equals(image), `${golden.name}: the bytes on flash changed; a format change needs a new version and new images, never edited ones`)
  })

  test(`${golden.name}: the committed image opens to the committed pieces, with and without its checkpoints`, async () => {
    const image = readFileSync(join(DIR, `${golden.name}.img`))
    const expected = JSON.parse(readFileSync(join(DIR, `${golden.name}.json`), 'utf8')) as Expected
    const cache = await FlashCache.open(SimFlash.fromImage(expected.geometry, image), options())
    assert.equal(cache.hashes(), expected.pieces, 'the same pieces in the same recency order')
    for (const [i, h] of expected.pieces.entries()) {
      const got = await cache.get(h)
      assert.ok(got !== undefined && sha(got) === h && got.length === expected.sizes[i])
    }
    if (golden.name === 'v1-torn') assert.ok(cache.recovery.invalidRecords >= 1, 'the torn record is seen and skipped')
    // Without anchors, a full replay finds the same pieces, and may find evicted
    // ones again (evictions are not written down: FORMAT.md, "Evictions").
    const wiped = Buffer.from(image)
    wiped.fill(0xff, 0, 2 * expected.geometry.blockBytes)
    const scanned = await FlashCache.open(SimFlash.fromImage(expected.geometry, wiped), options())
    assert.is(scanned.recovery.mode, 'scan')
    for (const h of expected.pieces) assert.ok(scanned.has(h), `full replay finds ${h.slice(0, 12)}`)
    for (const h of scanned.hashes()) assert.is(sha((await scanned.get(h))!), h)
  })
}

test.run()
