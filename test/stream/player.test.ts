// A player's cursor over the ring: start point, order, waiting out a
// repair, skipping a lost chunk, a slow reader, the end, seq framing.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimClock } from '../../src/hal'
import { STREAM_PLAYER_GAP_MS } from '../../src/limits'
import { CHUNK_FLAGS, ChunkRing, Player, wire, type Session } from '../../src/stream'

const SID = 'ab'.repeat(16)

/** Just what a player reads of a session: its ring and where the stream is. */
function fakeSession () {
  const ring = new ChunkRing(1 << 20, 64)
  const s = {
    ring, streamId: SID, newestSeq: -1, nextSeq: 0, ended: false, endSeq: -1,
    add (seq: number, flags = 0) {
      const p = Buffer.alloc(188, seq & 0xff); p[0] = 0x47
      ring.put(seq, wire.encodeChunk(SID, seq, flags, p), flags, 0)
      s.newestSeq = Math.max(s.newestSeq, seq)
    }
  }
  return s
}

function sink (blockAfter = Infinity) {
  const out = { data: [] as Buffer[], ended: false, drain: null as null | (() => void), writes: 0 }
  return {
    out,
    output: {
      write: (b: Buffer, done: () => void) => { out.data.push(Buffer.from(b)); out.writes++; done(); return out.writes < blockAfter },
      onDrain: (fn: () => void) => { out.drain = fn },
      end: () => { out.ended = true }
    }
  }
}

const seqsOf = (data: Buffer[]): number[] => data.map((b) => b[1]!)

test('starts at the newest KEY chunk, then writes every chunk in order as it comes', () => {
  const clock = new SimClock()
  const s = fakeSession()
  for (let i = 0; i < 10; i++) s.add(i, i % 4 === 0 ? CHUNK_FLAGS.key | CHUNK_FLAGS.psi : 0)
  const { out, output } = sink()
  const p = new Player(s as unknown as Session, output, clock)
  p.start()
  assert.equal(seqsOf(out.data), [8, 9])
  s.add(10); p.chunk()
  s.add(11); p.chunk()
  assert.equal(seqsOf(out.data), [8, 9, 10, 11])
  assert.is(out.data[0]!.length, 188, 'plain TS: the packets, nothing else')
})

test('a hole is waited out while a repair can fill it, then skipped', async () => {
  const clock = new SimClock()
  const s = fakeSession()
  s.add(0, CHUNK_FLAGS.key)
  const { out, output } = sink()
  const p = new Player(s as unknown as Session, output, clock)
  p.start()
  s.add(2); p.chunk()
  await clock.advance(STREAM_PLAYER_GAP_MS / 2)
  s.add(1); p.chunk()
  assert.equal(seqsOf(out.data), [0, 1, 2], 'repaired in time: nothing skipped')
  s.add(4); p.chunk()
  await clock.advance(STREAM_PLAYER_GAP_MS)
  p.pump()
  assert.equal(seqsOf(out.data), [0, 1, 2, 4])
  assert.is(p.skipped, 1)
  s.add(6); p.chunk()
  s.nextSeq = 7 // the node gave up on 5: no need to wait
  p.pump()
  assert.equal(seqsOf(out.data), [0, 1, 2, 4, 6])
})

test('a reader that blocks resumes on drain; one left behind by the ring jumps to the newest start point', () => {
  const clock = new SimClock()
  const s = fakeSession()
  s.add(0, CHUNK_FLAGS.key)
  const { out, output } = sink(2)
  const p = new Player(s as unknown as Session, output, clock)
  p.start()
  s.add(1); p.chunk()
  s.add(2); p.chunk()
  assert.equal(seqsOf(out.data), [0, 1], 'paused after the write that filled the socket')
  for (let i = 3; i < 200; i++) s.add(i, i === 150 ? CHUNK_FLAGS.key : 0)
  out.drain!()
  assert.is(seqsOf(out.data)[2], 150)
  assert.ok(p.skipped >= 100)
})

test('the end of the stream ends the response once everything is written; seq framing carries the sequence numbers', () => {
  const clock = new SimClock()
  const s = fakeSession()
  s.add(5, CHUNK_FLAGS.key); s.add(6)
  const { out, output } = sink()
  const p = new Player(s as unknown as Session, output, clock, 'seq')
  p.start()
  s.ended = true; s.endSeq = 6
  p.end()
  assert.ok(out.ended)
  assert.equal(out.data.map((b) => b.readUInt32BE(0)), [5, 6])
  assert.equal(out.data.map((b) => b.readUInt16BE(4)), [1, 1])
  assert.is(out.data[0]!.length, 6 + 188)
})

test.run()
