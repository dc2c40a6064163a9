// Verification on read (FORMAT.md, "Verification on read"): with reads
// checked by CRC-32 (the default) or by SHA-256, every damaged copy of a piece
// is refused: every single bit flip anywhere in its records (header, body,
// padding, commit CRC; both records of a split piece), seeded double flips
// and bursts of up to 32 bits, and a valid record found in the wrong place.
// Damage is made on a cleanly closed image, so recovery trusts the checkpoint
// and does not read the records: the read's own check must catch it.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { checkConfig } from '../../src/config'
import { CanopyError } from '../../src/errors'
import { FlashCache, type FlashCacheOptions, type VerifyReads } from '../../src/flash-cache'
import { crc32 } from '../../src/flash-cache/crc32'
import { encodeRecord, recordBytesFor, RecordType } from '../../src/flash-cache/format'
import { createSeededRandom, SimClock, SimFlash, type FlashGeometry } from '../../src/hal'
import { testSeed } from '../helpers/seed'
import { sha, VERIFY_MODES } from './workload'

const G: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 1024, blockCount: 10 }
const options = (verifyReads: VerifyReads): FlashCacheOptions =>
  ({ clock: new SimClock(), bytesMax: 4000, piecesMax: 20, writeBudgetBytesPerDay: 1 << 30, verifyReads })

/** Records of one piece in an image: [start, length] of each. */
type Records = Array<[number, number]>

interface Image { image: Buffer, pieces: Buffer[], whole: Records, split: Records }

/** Pieces of 600, 600 and 300 bytes: the second spans a block boundary (two records), the third is whole in the next block. */
async function cleanImage (): Promise<Image> {
  const r = createSeededRandom(7)
  const pieces = [r.bytes(600), r.bytes(600), r.bytes(300)]
  const flash = new SimFlash(G)
  const cache = await FlashCache.open(flash, options('crc32'))
  for (const p of pieces) await cache.put(sha(p), p)
  assert.is(cache.stats().writes.splitPieces, 1)
  await cache.close()
  const image = flash.durableImage()
  const at = (bytes: Buffer): number => { const i = image.indexOf(bytes); assert.ok(i > 0); return i - 64 }
  const first = 1024 - 32 - recordBytesFor(600, 16) - 68 // what fits the first block after piece 0
  return {
    image,
    pieces,
    whole: [[at(pieces[2]!.subarray(0, 40)), recordBytesFor(300, 16)]],
    split: [[at(pieces[1]!.subarray(0, 40)), recordBytesFor(first, 16)], [at(pieces[1]!.subarray(first, first + 40)), recordBytesFor(600 - first, 16)]]
  }
}

async function collect (s: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = []
  await pipeline(s, new Writable({ write (c, _e, cb) { parts.push(c as Buffer); cb() } }))
  return Buffer.concat(parts)
}

/**
 * Open the damaged image and read the piece: it must be refused (get: undefined,
 * counted and dropped; a stream: undefined before a byte) while every other
 * piece still reads back whole.
 */
async function refused (img: Image, damaged: Buffer, piece: Buffer, mode: VerifyReads, how: 'get' | 'stream', where: string): Promise<void> {
  const cache = await FlashCache.open(SimFlash.fromImage(G, damaged), options(mode))
  assert.is(cache.recovery.mode, 'checkpoint', where)
  assert.ok(cache.has(sha(piece)), `${where}: the checkpoint still lists the piece`)
  if (how === 'get') assert.is(await cache.get(sha(piece)), undefined, `${where}: refused`)
  else assert.is(await cache.readStream(sha(piece)), undefined, `${where}: refused before a byte is streamed`)
  assert.is(cache.stats().corruptDropped, 1, `${where}: counted`)
  assert.not.ok(cache.has(sha(piece)), `${where}: dropped`)
  for (const p of img.pieces) if (p !== piece) assert.equal(await cache.get(sha(p)), p, `${where}: the others are served`)
}

const flip = (image: Buffer, bits: number[]): Buffer => {
  const out = Buffer.from(image)
  for (const b of bits) out[b >> 3]! ^= 1 << (b & 7)
  return out
}

for (const mode of VERIFY_MODES) {
  test(`reads by ${mode}: every single bit flip in a piece's records is refused, whole and split`, async () => {
    const img = await cleanImage()
    let n = 0
    for (const [piece, records] of [[img.pieces[2]!, img.whole], [img.pieces[1]!, img.split]] as const) {
      for (const [start, length] of records) {
        for (let bit = start * 8; bit < (start + length) * 8; bit++) {
          await refused(img, flip(img.image, [bit]), piece, mode, n % 13 === 0 ? 'stream' : 'get', `${mode}, bit ${bit}`)
          n++
        }
      }
    }
    assert.ok(n > 8000, `${n} single flips`)
  })

  test(`reads by ${mode}: double flips and bursts up to 32 bits are refused`, async () => {
    const seed = testSeed(`verify bursts ${mode}`, 17)
    const r = createSeededRandom(seed)
    const img = await cleanImage()
    const [start, length] = img.whole[0]!
    for (let i = 0; i < 1500; i++) {
      const a = start * 8 + r.int(length * 8)
      let b = start * 8 + r.int(length * 8)
      if (b === a) b = a === start * 8 ? a + 1 : a - 1
      await refused(img, flip(img.image, [a, b]), img.pieces[2]!, mode, 'get', `${mode}, bits ${a} ${b}`)
    }
    for (let i = 0; i < 1500; i++) {
      // A burst: its first and last bits flipped, any of those between.
      const span = 2 + r.int(31)
      const first = start * 8 + r.int(length * 8 - span + 1)
      const bits = [first, first + span - 1]
      for (let k = 1; k < span - 1; k++) if (r.float() < 0.5) bits.push(first + k)
      await refused(img, flip(img.image, bits), img.pieces[2]!, mode, 'get', `${mode}, burst of ${span} at bit ${first}`)
    }
  })

  test(`reads by ${mode}: a valid record in the wrong place is refused (a misdirected or stale write)`, async () => {
    const img = await cleanImage()
    const [whole] = img.whole
    const [part1] = img.split
    // A misdirected write: the start of the whole piece's (valid) record where the split piece's first record was.
    const damaged = Buffer.from(img.image)
    img.image.copy(damaged, part1![0], whole![0], whole![0] + part1![1])
    await refused(img, damaged, img.pieces[1]!, mode, 'get', `${mode}, misdirected`)
    // A stale write: the same piece, right key, right place, CRCs that hold, but stamped for another
    // segment's life in this block (as a copy left from before the block was erased would be).
    const [start] = whole!
    const block = Math.floor(start / G.blockBytes)
    const offset = start % G.blockBytes
    const seq = img.image.readUInt32LE(start + 8)
    const stale = Buffer.from(img.image)
    encodeRecord({ type: RecordType.piece, seq: seq - 1, offset, a: 300, b: 0, key: Buffer.from(sha(img.pieces[2]!), 'hex') }, img.pieces[2]!, 16).copy(stale, block * G.blockBytes + offset)
    await refused(img, stale, img.pieces[2]!, mode, 'stream', `${mode}, stale`)
  })
}

test('what CRC-32 does not cover, and SHA-256 does: a record rewritten with fresh CRCs (deliberate tampering)', async () => {
  const img = await cleanImage()
  const [start, length] = img.whole[0]!
  const forged = Buffer.from(img.image)
  forged[start + 64 + 5]! ^= 0xff
  forged.writeUInt32LE(crc32(forged.subarray(start, start + length - 4)), start + length - 4)
  await refused(img, forged, img.pieces[2]!, 'sha256', 'get', 'sha256, forged')
  // Reads by CRC-32 prove the bytes are those written, not who wrote them (FORMAT.md): such a
  // record is served, and a consumer on another device checks it against the manifest anyway.
  const cache = await FlashCache.open(SimFlash.fromImage(G, forged), options('crc32'))
  const got = await cache.get(sha(img.pieces[2]!))
  assert.ok(got !== undefined && !got.equals(img.pieces[2]!))
})

test('verifyReads: crc32 by default, sha256 on request, anything else is a config error naming the field', async () => {
  assert.is(checkConfig({}).cache.verifyReads, 'crc32')
  assert.is(checkConfig({ cache: { verifyReads: 'sha256' } }).cache.verifyReads, 'sha256')
  try {
    checkConfig({ cache: { verifyReads: 'md5' } })
    assert.unreachable('md5 is refused')
  } catch (err) {
    assert.ok(CanopyError.is(err, 'CONFIG_INVALID'))
    assert.match(err.message, /cache\.verifyReads/)
  }
  for (const mode of VERIFY_MODES) {
    const cache = await FlashCache.open(new SimFlash(G), options(mode))
    assert.is(cache.stats().verifyReads, mode)
  }
  const big = createSeededRandom(3).bytes(900)
  for (const mode of VERIFY_MODES) {
    const cache = await FlashCache.open(new SimFlash(G), options(mode))
    await cache.put(sha(big), big)
    assert.equal(await collect((await cache.readStream(sha(big)))!), big)
    assert.equal(await collect((await cache.readStream(sha(big), { start: 100, end: 901 - 1 }))!), big.subarray(100, 900))
  }
})

test.run()
