// Cutting TS into chunks: whole packets, cuts at PATs, keyframe chunks
// flagged, the same chunks for any split of the input, resync after junk.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createSeededRandom } from '../../src/hal'
import { STREAM_CHUNK_PACKETS_MAX } from '../../src/limits'
import { CHUNK_FLAGS, TsChunker } from '../../src/stream'
import { PID_PAT, pidOf } from '../../src/stream/ts'
import { TsGen } from '../helpers/ts'
import { testSeed } from '../helpers/seed'

interface Chunk { packets: Buffer, flags: number }
const collect = (): { chunker: TsChunker, chunks: Chunk[] } => {
  const chunks: Chunk[] = []
  const chunker = new TsChunker((p, flags) => chunks.push({ packets: Buffer.from(p), flags }))
  return { chunker, chunks }
}

test('every chunk is whole packets; a PAT starts a chunk; keyframe chunks are KEY|PSI', () => {
  const g = new TsGen(5)
  const { chunker, chunks } = collect()
  const input = Buffer.concat(Array.from({ length: 20 }, () => g.frame(30)))
  chunker.push(input)
  chunker.end()
  assert.ok(Buffer.concat(chunks.map((c) => c.packets)).equals(input), 'nothing lost, nothing added, order kept')
  for (const c of chunks) {
    assert.is(c.packets.length % 188, 0)
    assert.ok(c.packets.length / 188 <= STREAM_CHUNK_PACKETS_MAX)
    const startsWithPat = pidOf(c.packets) === PID_PAT
    assert.is((c.flags & CHUNK_FLAGS.psi) !== 0, startsWithPat)
  }
  const keys = chunks.filter((c) => (c.flags & CHUNK_FLAGS.key) !== 0)
  assert.is(keys.length, 4, 'one KEY chunk per keyframe (every 5 frames of 20)')
  for (const k of keys) assert.is(k.flags, CHUNK_FLAGS.key | CHUNK_FLAGS.psi)
  for (let i = 0; i < chunks.length; i++) {
    for (let p = 188; p < chunks[i]!.packets.length; p += 188) assert.not.ok(pidOf(chunks[i]!.packets, p) === PID_PAT, 'a PAT only ever opens a chunk')
  }
})

test('property: any split of the input gives the same packets and the same KEY chunks', () => {
  const random = createSeededRandom(testSeed('chunker splits', 3))
  const g = new TsGen(4)
  const input = Buffer.concat(Array.from({ length: 30 }, () => g.frame(1 + random.int(60))))
  const whole = collect()
  whole.chunker.push(input); whole.chunker.end()
  const keyStarts = (cs: Chunk[]): string[] => cs.filter((c) => (c.flags & CHUNK_FLAGS.key) !== 0).map((c) => c.packets.subarray(0, 188).toString('hex'))
  for (let round = 0; round < 50; round++) {
    const split = collect()
    for (let at = 0; at < input.length;) {
      const n = 1 + random.int(random.float() < 0.3 ? 200 : 40_000)
      split.chunker.push(input.subarray(at, at + n))
      at += n
    }
    split.chunker.end()
    assert.ok(Buffer.concat(split.chunks.map((c) => c.packets)).equals(input))
    assert.equal(keyStarts(split.chunks), keyStarts(whole.chunks), 'the same keyframe start points whatever the write sizes')
  }
})

test('a short PSI tail waits for the next write so PAT, PMT and keyframe share a KEY chunk', () => {
  const g = new TsGen(1)
  const f = g.frame(10)
  const { chunker, chunks } = collect()
  chunker.push(f.subarray(0, 2 * 188)) // PAT and PMT only
  assert.is(chunks.length, 0, 'held')
  chunker.push(f.subarray(2 * 188))
  assert.is(chunks.length, 1)
  assert.is(chunks[0]!.flags, CHUNK_FLAGS.key | CHUNK_FLAGS.psi)
})

test('junk before and between packets is skipped and counted; a partial last packet is dropped', () => {
  const g = new TsGen(3)
  const a = g.frame(4)
  const b = g.frame(4)
  const { chunker, chunks } = collect()
  chunker.push(Buffer.concat([Buffer.from('garbage!'), a, Buffer.from([1, 2, 3, 0x47, 9]), b, b.subarray(0, 100)]))
  chunker.end()
  assert.ok(Buffer.concat(chunks.map((c) => c.packets)).equals(Buffer.concat([a, b])))
  assert.is(chunker.counters.skippedBytes, 8 + 5 + 100)
})

test('a long run without PAT is cut at the packet bound', () => {
  const g = new TsGen(1000)
  g.frame(1)
  const { chunker, chunks } = collect()
  chunker.push(g.frame(STREAM_CHUNK_PACKETS_MAX * 3))
  chunker.end()
  assert.equal(chunks.map((c) => c.packets.length / 188), [STREAM_CHUNK_PACKETS_MAX, STREAM_CHUNK_PACKETS_MAX, STREAM_CHUNK_PACKETS_MAX, 1])
})

test.run()
