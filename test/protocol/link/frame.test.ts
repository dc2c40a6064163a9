// Link framing: exact frames out for any split of the input, sizes refused
// before buffering, and a fuzz run where nothing but the coded error escapes.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../../src/errors'
import { createSeededRandom } from '../../../src/hal'
import { LINK_FRAME_BYTES_MAX } from '../../../src/limits'
import { FRAME_HEADER_BYTES, createFrameDecoder, type FrameDecoder, allocFrame, encodeFrame, framePayload } from '../../../src/protocol/link'
import { testSeed } from '../../helpers/seed'

const decodeAll = (d: FrameDecoder, parts: Buffer[]): Buffer[] => {
  const out: Buffer[] = []
  for (const p of parts) d.push(p, (f) => out.push(f))
  return out
}

test('a frame is length, channel, payload; an empty payload is a 5-byte frame', () => {
  const f = encodeFrame(1, Buffer.from('abc'))
  assert.equal([...f], [0, 0, 0, 4, 1, 0x61, 0x62, 0x63])
  const empty = decodeAll(createFrameDecoder(), [encodeFrame(7, Buffer.alloc(0))])
  assert.is(empty.length, 1)
  assert.equal([...empty[0]!], [0, 0, 0, 1, 7])
})

test('a declared length of 0 or above the bound is refused before anything is buffered', () => {
  const d = createFrameDecoder()
  const over = Buffer.alloc(5)
  over.writeUInt32BE(LINK_FRAME_BYTES_MAX, 0) // + 4 header bytes > bound
  try {
    d.push(over, () => {})
    assert.unreachable()
  } catch (err) {
    assert.is((err as CanopyError).code, 'LINK_FRAME_INVALID')
  }
  assert.is(d.buffered, FRAME_HEADER_BYTES)
  assert.throws(() => d.push(Buffer.from([1]), () => {}), (e: CanopyError) => e.code === 'LINK_FRAME_INVALID', 'stays failed')
  assert.throws(() => createFrameDecoder().push(Buffer.from([0, 0, 0, 0, 1]), () => {}), (e: CanopyError) => e.code === 'LINK_FRAME_INVALID')
  const largest = allocFrame(1, LINK_FRAME_BYTES_MAX - FRAME_HEADER_BYTES)
  largest.fill(9, FRAME_HEADER_BYTES)
  assert.is(decodeAll(createFrameDecoder(), [largest])[0]!.length, LINK_FRAME_BYTES_MAX, 'exactly the bound passes')
})

test('property: any split of any frame sequence yields the same frames, each one exact Buffer', () => {
  const random = createSeededRandom(testSeed('link frame splits', 11))
  for (let round = 0; round < 300; round++) {
    const frames = Array.from({ length: 1 + random.int(8) }, () => encodeFrame(random.int(256), random.bytes(random.int(random.float() < 0.1 ? 20_000 : 300))))
    const stream = Buffer.concat(frames)
    const parts: Buffer[] = []
    for (let at = 0; at < stream.length;) {
      const n = Math.min(stream.length - at, 1 + random.int(random.float() < 0.5 ? 7 : 4000))
      parts.push(stream.subarray(at, at + n))
      at += n
    }
    const d = createFrameDecoder()
    const out = decodeAll(d, parts)
    assert.is(out.length, frames.length)
    out.forEach((f, i) => {
      assert.ok(f.equals(frames[i]!))
      assert.ok(framePayload(f).equals(framePayload(frames[i]!)))
    })
    assert.is(d.buffered, 0)
  }
})

test('fuzz: 200 000 mutated frame streams, only LINK_FRAME_INVALID escapes, output bounded', () => {
  const random = createSeededRandom(testSeed('link frame fuzz', 12))
  const seedStream = Buffer.concat([encodeFrame(0, random.bytes(40)), encodeFrame(1, random.bytes(300)), encodeFrame(1, Buffer.alloc(0))])
  let frames = 0
  let errors = 0
  for (let i = 0; i < 200_000; i++) {
    const s = Buffer.from(seedStream)
    const flips = 1 + random.int(4)
    for (let k = 0; k < flips; k++) s[random.int(s.length)] = random.int(256)
    const cut = random.int(s.length + 1)
    const d = createFrameDecoder(4096)
    try {
      d.push(s.subarray(0, cut), (f) => { frames++; assert.ok(f.length <= 4096) })
      d.push(s.subarray(cut), (f) => { frames++; assert.ok(f.length <= 4096) })
    } catch (err) {
      if (!CanopyError.is(err, 'LINK_FRAME_INVALID')) throw err
      errors++
    }
    assert.ok(d.buffered <= 4096)
  }
  assert.ok(frames > 0 && errors > 0, `frames ${frames}, errors ${errors}`)
})

test.run()
