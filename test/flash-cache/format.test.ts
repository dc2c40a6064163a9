// The on-flash structures (FORMAT.md): round trips, the CRC's official check
// value, every single-byte change detected, and decoders that never throw on
// garbage.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { crc32, crc32Table } from '../../src/flash-cache/crc32'
import {
  decodeAnchor, decodeCheckpoint, decodeRecordHeader, decodeSegmentHeader, encodeAnchor, encodeCheckpoint, encodeRecord,
  encodeSegmentHeader, NO_BLOCK, recordBytesFor, recordCommitted, RecordType, sha256, type Checkpoint
} from '../../src/flash-cache/format'
import { createSeededRandom } from '../../src/hal'
import { testSeed } from '../helpers/seed'

const PROG = 16
const BLOCK = 4096

test('CRC-32: the catalogue check value, and the table agrees with the native one', () => {
  const check = Buffer.from('123456789')
  assert.is(crc32(check), 0xcbf43926)
  assert.is(crc32Table(check), 0xcbf43926)
  const r = createSeededRandom(testSeed('crc', 1))
  for (let i = 0; i < 50; i++) {
    const b = r.bytes(r.int(3000))
    assert.is(crc32Table(b), crc32(b))
    const cut = r.int(b.length + 1)
    assert.is(crc32(b.subarray(cut), crc32(b.subarray(0, cut))), crc32(b), 'continues from a prefix')
  }
})

test('segment header: round trip, bound to its block and geometry, every byte checked', () => {
  const h = encodeSegmentHeader(77, 5, BLOCK, PROG)
  assert.is(h.length, 32)
  assert.equal(decodeSegmentHeader(h, 5, BLOCK), { seq: 77 })
  assert.is(decodeSegmentHeader(h, 6, BLOCK), null, 'read from another block')
  assert.is(decodeSegmentHeader(h, 5, BLOCK * 2), null, 'another geometry')
  assert.is(decodeSegmentHeader(h.subarray(0, 31), 5, BLOCK), null)
  for (let i = 0; i < 32; i++) {
    const c = Buffer.from(h)
    c[i]! ^= 0x04
    assert.is(decodeSegmentHeader(c, 5, BLOCK), null, `byte ${i}`)
  }
})

test('record: header and commit CRC; torn, rotten or misplaced records fail', () => {
  const body = createSeededRandom(2).bytes(333)
  const key = sha256(body)
  const rec = encodeRecord({ type: RecordType.piece, seq: 9, offset: 480, key }, body, PROG)
  assert.is(rec.length, recordBytesFor(333, PROG))
  assert.is(rec.length % PROG, 0)
  const expect = { seq: 9, offset: 480, blockBytes: BLOCK, programBytes: PROG }
  const h = decodeRecordHeader(rec, 0, expect)!
  assert.ok(h !== null)
  assert.equal([h.type, h.seq, h.offset, h.bodyLength, h.recordBytes], [RecordType.piece, 9, 480, 333, rec.length])
  assert.equal(h.key, key)
  assert.ok(recordCommitted(rec, h))
  assert.is(decodeRecordHeader(rec, 0, { ...expect, seq: 10 }), null, 'another segment')
  assert.is(decodeRecordHeader(rec, 0, { ...expect, offset: 496 }), null, 'another place')
  assert.is(decodeRecordHeader(rec, 0, { ...expect, offset: BLOCK - 64 }), null, 'would run past the block')
  for (let i = 0; i < 64; i++) {
    const c = Buffer.from(rec); c[i]! ^= 0x80
    assert.is(decodeRecordHeader(c, 0, expect), null, `header byte ${i}`)
  }
  for (let i = 64; i < rec.length; i += 7) {
    const c = Buffer.from(rec); c[i]! ^= 0x01
    const hc = decodeRecordHeader(c, 0, expect)!
    assert.not.ok(recordCommitted(c, hc), `body or trailer byte ${i}`)
  }
  for (const n of [0, 64, 100, rec.length - 1]) {
    const torn = Buffer.concat([rec.subarray(0, n), Buffer.alloc(rec.length - n, 0xff)])
    const ht = decodeRecordHeader(torn, 0, expect)
    assert.ok(ht === null || !recordCommitted(torn, ht), `torn after ${n} bytes`)
  }
})

test('anchor: round trip, a bounded part list, every byte checked', () => {
  const a = { revision: 12, nextSeq: 2048, checkpointBytes: 5000, checkpointHash: sha256(Buffer.from('x')), parts: [{ block: 3, seq: 40, offset: 32, bodyLength: 3000 }, { block: 4, seq: 41, offset: 32, bodyLength: 2000 }] }
  const buf = encodeAnchor(a, PROG)
  const d = decodeAnchor(buf, 0, PROG, 8)!
  assert.equal({ ...d, anchorBytes: undefined }, { ...a, anchorBytes: undefined })
  assert.is(d.anchorBytes, buf.length)
  assert.is(decodeAnchor(buf, 0, PROG, 1), null, 'more parts than allowed')
  for (let i = 0; i < buf.length; i++) {
    const c = Buffer.from(buf); c[i]! ^= 0x10
    assert.is(decodeAnchor(c, 0, PROG, 8), null, `byte ${i}`)
  }
})

test('checkpoint: round trip in order; truncated or trailing bytes rejected', () => {
  const r = createSeededRandom(3)
  const cp: Checkpoint = {
    revision: 4, logSeq: 100, logOffset: 512, nextSeq: 130,
    counters: { bytesProgrammed: 2 ** 40 + 5, erases: 9, evictions: 3, corruptDropped: 1, bytesAccepted: 77 },
    // key, length, block, seq, offset, length1, block2, seq2, offset2
    pieces: Array.from({ length: 5 }, (_, i) => [r.bytes(32), 100 + i, i + 2, 90 + i, 32 * i, i === 3 ? 40 : 100 + i,
      i === 3 ? 9 : NO_BLOCK, i === 3 ? 95 : 0, i === 3 ? 32 : 0]),
    // key, block, seq, offset, targetSeq, targetOffset
    tombs: [[r.bytes(32), 7, 99, 64, 91, 32]],
    // deadBlock, deadSeq, block, seq, offset
    dead: [[9, 50, 8, 98, 96]]
  }
  const blob = encodeCheckpoint(cp)
  assert.equal(decodeCheckpoint(blob), cp)
  assert.is(decodeCheckpoint(blob.subarray(0, blob.length - 1)), null)
  assert.is(decodeCheckpoint(Buffer.concat([blob, Buffer.alloc(1)])), null)
  const badCount = Buffer.from(blob); badCount.writeUInt32LE(6, 24)
  assert.is(decodeCheckpoint(badCount), null)
})

test('decoders never throw on garbage', () => {
  const r = createSeededRandom(testSeed('format garbage', 4))
  for (let i = 0; i < 3000; i++) {
    const b = r.bytes(r.int(400))
    // Start some with real magic so the checks behind it run too.
    if (b.length >= 4 && r.float() < 0.5) b.write(['CNPS', 'CNPR', 'CNPA', 'CNPK'][r.int(4)]!, 0, 'latin1')
    decodeSegmentHeader(b, r.int(10), BLOCK)
    const h = decodeRecordHeader(b, r.int(8), { seq: r.int(3), offset: r.int(3), blockBytes: BLOCK, programBytes: PROG })
    if (h !== null) recordCommitted(b, h)
    decodeAnchor(b, r.int(8), PROG, 16)
    decodeCheckpoint(b)
  }
})

test.run()
