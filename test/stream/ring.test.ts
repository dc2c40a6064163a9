// The ring buffer: bounded by bytes and count, out-of-order fills, start points.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createSeededRandom } from '../../src/hal'
import { CHUNK_FLAGS, ChunkRing } from '../../src/stream'
import { testSeed } from '../helpers/seed'

const f = (n: number, bytes = 100): Buffer => Buffer.alloc(bytes, n & 0xff)

test('keeps the newest chunks within its byte bound, evicting from the oldest', () => {
  const r = new ChunkRing(1000, 64)
  for (let s = 0; s < 25; s++) assert.ok(r.put(s, f(s), 0, s))
  assert.is(r.size, 10)
  assert.is(r.bytes, 1000)
  assert.is(r.oldest, 15)
  assert.is(r.newest, 24)
  assert.not.ok(r.has(14))
  assert.is(r.get(20)![0], 20)
  assert.not.ok(r.put(3, f(3), 0, 0), 'older than the window')
  assert.not.ok(r.put(20, f(20), 0, 0), 'a duplicate')
  assert.is(r.evicted, 15)
})

test('keeps at most chunksMax in its window; a far jump empties it', () => {
  const r = new ChunkRing(1 << 20, 8)
  for (let s = 0; s < 8; s++) r.put(s, f(s), 0, 0)
  r.put(9, f(9), 0, 0)
  assert.is(r.floor, 2)
  assert.not.ok(r.has(0) || r.has(1))
  r.put(1000, f(1000), 0, 0)
  assert.is(r.size, 1)
  assert.is(r.oldest, 1000)
})

test('holes are filled out of order; the start point is the newest KEY chunk, else PSI, else the oldest', () => {
  const r = new ChunkRing(1 << 20, 64)
  for (const s of [10, 11, 14, 15]) r.put(s, f(s), 0, 0)
  assert.ok(r.put(12, f(12), CHUNK_FLAGS.psi, 0))
  assert.ok(r.put(13, f(13), 0, 0))
  assert.is(r.startPoint(), 12)
  r.put(16, f(16), CHUNK_FLAGS.key | CHUNK_FLAGS.psi, 0)
  r.put(17, f(17), 0, 0)
  assert.is(r.startPoint(), 16)
  const plain = new ChunkRing(1 << 20, 64)
  plain.put(5, f(5), 0, 0); plain.put(6, f(6), 0, 0)
  assert.is(plain.startPoint(), 5)
})

test('property: random puts keep bytes and count exact and within bounds', () => {
  const rnd = createSeededRandom(testSeed('ring random puts', 4))
  const r = new ChunkRing(5000, 32)
  const held = new Map<number, number>()
  let top = 0
  for (let i = 0; i < 5000; i++) {
    const s = Math.max(0, top + rnd.int(20) - 10)
    const size = 1 + rnd.int(900)
    if (r.put(s, f(s, size), 0, 0)) held.set(s, size)
    top = Math.max(top, s)
    for (const k of [...held.keys()]) if (!r.has(k)) held.delete(k)
    assert.is(r.size, held.size)
    assert.is(r.bytes, [...held.values()].reduce((a, b) => a + b, 0))
    assert.ok(r.bytes <= 5000 && r.size <= 32)
  }
})

test.run()
