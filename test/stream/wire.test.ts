// The stream wire format: every message against committed golden bytes,
// round trips of random messages, and a fuzz run of the decoder where
// nothing but STREAM_MALFORMED escapes.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../src/errors'
import { createSeededRandom, type Random } from '../../src/hal'
import { createKeyPair } from '../../src/identity'
import { FRAME_HEADER_BYTES, LINK_CHANNELS } from '../../src/protocol/link'
import { BATCH_DOMAIN, createMeta, decodeMeta, realCrypto, wire, type StreamMeta } from '../../src/stream'
import { golden } from '../helpers/fixtures'
import { testSeed } from '../helpers/seed'

const key = createKeyPair(createSeededRandom(77))
const meta: StreamMeta = createMeta({ name: 'concert.main', sourceKey: key.publicRaw, privateKey: key.privateKey, nonce: Buffer.from('0102030405060708', 'hex') })
const SID = meta.streamId
const id = (n: number): string => n.toString(16).padStart(2, '0').repeat(16)
const packet = (n: number): Buffer => { const p = Buffer.alloc(188, n); p[0] = 0x47; return p }
const cand = (n: number, address = ''): wire.Candidate => ({ nodeId: id(n), depth: n % 7, spare: n % 5, uptimeS: n * 1000, port: address === '' ? 0 : 8788, address })
const payload = (frame: Buffer): Buffer => frame.subarray(FRAME_HEADER_BYTES)

function samples (): Array<[string, Buffer]> {
  const hashes = [0, 1, 2].map((i) => realCrypto.hashChunk(wire.encodeChunk(SID, 100 + i, 0, packet(i))))
  const body = wire.sigBody(SID, 100, 1_000_000, hashes)
  const end = wire.endBody(SID, 102)
  return [
    ['meta', meta.bytes],
    ['chunk', wire.encodeChunk(SID, 7, 3, Buffer.concat([packet(1), packet(2)]))],
    ['sig', wire.encodeSig(body, realCrypto.sign(key.privateKey, BATCH_DOMAIN, body))],
    ['find', wire.encodeFind(42, 'concert.main')],
    ['found', wire.encodeFound(42, meta.sourceId, 1_000_000, meta.bytes, [cand(1, '192.168.1.20'), cand(2)])],
    ['not-found', wire.encodeNotFound(42)],
    ['join', wire.encodeJoin({ streamId: SID, fromSeq: wire.FROM_NEWEST_KEY, capacity: 4, uptimeS: 3600, flags: wire.JOIN_FLAGS.orphan, formerParent: id(9) })],
    ['accept', wire.encodeAccept(SID, 100, 12, [meta.sourceId, id(3)])],
    ['redirect', wire.encodeRedirect(SID, wire.REDIRECT.full, [cand(4, '10.0.0.4'), cand(5, 'fe80::1%eth0')])],
    ['refuse', wire.encodeRefuse(SID, wire.REFUSE.loop)],
    ['leave', wire.encodeLeave(SID)],
    ['end', wire.encodeEnd(end, realCrypto.sign(key.privateKey, 'canopy stream end v1', end))],
    ['status', wire.encodeStatus(SID, 30, [meta.sourceId, id(3), id(4)], [cand(6, '10.0.0.6')])],
    ['report', wire.encodeReport({ streamId: SID, subtree: 12, capacity: 3, children: 2, uptimeS: 99, nextSeq: 1234, spare: [cand(7), cand(8, '10.0.0.8')] })],
    ['heartbeat', wire.encodeHeartbeat(SID)],
    ['gap', wire.encodeGap(SID, 500, 9)]
  ]
}

test('golden bytes: every message encodes to its committed fixture, and the fixture decodes', () => {
  for (const [name, made] of samples()) {
    const committed = golden(`stream/${name}`, made)
    assert.ok(made.equals(committed), `${name} encodes to the committed bytes`)
    if (name === 'meta') {
      assert.is(decodeMeta(committed).streamId, SID)
      continue
    }
    assert.is(committed[4], LINK_CHANNELS.stream)
    assert.is(committed.readUInt32BE(0), committed.length - 4)
    const m = wire.decodeMessage(payload(committed))
    assert.is(m.type, name === 'not-found' ? 'notFound' : name)
  }
})

test('decoded fields are the encoded ones', () => {
  const m = wire.decodeMessage(payload(wire.encodeJoin({ streamId: SID, fromSeq: 5, capacity: 3, uptimeS: 60, flags: 0 })))
  assert.equal(m, { type: 'join', streamId: SID, fromSeq: 5, capacity: 3, uptimeS: 60, flags: 0, formerParent: '0'.repeat(32) })
  const r = wire.decodeMessage(payload(wire.encodeRedirect(SID, 2, [cand(1, '10.1.2.3'), cand(2)])))
  assert.equal(r, { type: 'redirect', streamId: SID, reason: 2, candidates: [cand(1, '10.1.2.3'), cand(2)] })
  const c = wire.decodeMessage(payload(wire.encodeChunk(SID, 9, 1, Buffer.concat([packet(1), packet(2), packet(3)]))))
  assert.equal(c, { type: 'chunk', flags: 1, streamId: SID, seq: 9, packets: 3 })
})

test('meta: a changed byte breaks the signature or the id; another key cannot claim the stream id', () => {
  for (let i = 0; i < meta.bytes.length; i++) {
    const t = Buffer.from(meta.bytes)
    t[i] ^= 0x01
    let sameStream = false
    try { sameStream = decodeMeta(t).streamId === SID } catch (err) { assert.ok(CanopyError.is(err, 'STREAM_MALFORMED') || CanopyError.is(err, 'STREAM_BAD_SIGNATURE')) }
    assert.not.ok(sameStream, `byte ${i}`)
  }
  const other = createKeyPair(createSeededRandom(78))
  const forged = createMeta({ name: meta.name, sourceKey: other.publicRaw, privateKey: other.privateKey, nonce: meta.nonce })
  assert.is.not(forged.streamId, SID)
})

function randomMessage (r: Random): Buffer {
  const sid = r.bytes(16).toString('hex')
  const cands = Array.from({ length: r.int(5) }, () => ({ nodeId: r.bytes(16).toString('hex'), depth: r.int(256), spare: r.int(256), uptimeS: r.int(2 ** 31), port: r.int(65536), address: ['', '10.0.0.1', '::1', 'host-a.lan'][r.int(4)]! }))
  const path = Array.from({ length: 1 + r.int(8) }, () => r.bytes(16).toString('hex'))
  switch (r.int(10)) {
    case 0: return wire.encodeChunk(sid, r.int(2 ** 32), r.int(4), Buffer.concat(Array.from({ length: 1 + r.int(64) }, () => packet(r.int(256)))))
    case 1: return wire.encodeFind(r.int(2 ** 32), 'n'.repeat(1 + r.int(64)))
    case 2: return wire.encodeFound(r.int(2 ** 32), r.bytes(16).toString('hex'), r.int(2 ** 32), meta.bytes, cands)
    case 3: return wire.encodeJoin({ streamId: sid, fromSeq: r.int(2 ** 32), capacity: r.int(256), uptimeS: r.int(2 ** 32), flags: r.int(2), formerParent: r.bytes(16).toString('hex') })
    case 4: return wire.encodeAccept(sid, r.int(2 ** 32), r.int(65536), path)
    case 5: return wire.encodeRedirect(sid, r.int(256), cands)
    case 6: return wire.encodeStatus(sid, r.int(65536), path, cands)
    case 7: return wire.encodeReport({ streamId: sid, subtree: r.int(2 ** 32), capacity: r.int(256), children: r.int(256), uptimeS: r.int(2 ** 32), nextSeq: r.int(2 ** 32), spare: cands })
    case 8: return wire.encodeGap(sid, r.int(2 ** 32), r.int(65536))
    default: return wire.encodeSig(wire.sigBody(sid, r.int(2 ** 32), r.int(2 ** 32), Array.from({ length: 1 + r.int(16) }, () => r.bytes(32))), r.bytes(64))
  }
}

test('property: random messages decode to what was encoded, and re-encode to the same bytes', () => {
  const r = createSeededRandom(testSeed('stream wire round trip', 21))
  for (let i = 0; i < 3000; i++) {
    const f = randomMessage(r)
    const m = wire.decodeMessage(payload(f))
    let again: Buffer
    switch (m.type) {
      case 'chunk': again = wire.encodeChunk(m.streamId, m.seq, m.flags, f.subarray(wire.CHUNK_PACKETS_OFFSET)); break
      case 'find': again = wire.encodeFind(m.requestId, m.name); break
      case 'found': again = wire.encodeFound(m.requestId, m.rootId, m.bitrate, m.meta, m.candidates); break
      case 'join': again = wire.encodeJoin(m); break
      case 'accept': again = wire.encodeAccept(m.streamId, m.startSeq, m.latencyMs, m.path); break
      case 'redirect': again = wire.encodeRedirect(m.streamId, m.reason, m.candidates); break
      case 'status': again = wire.encodeStatus(m.streamId, m.latencyMs, m.path, m.backups); break
      case 'report': again = wire.encodeReport(m); break
      case 'gap': again = wire.encodeGap(m.streamId, m.fromSeq, m.count); break
      case 'sig': again = Buffer.from(f); break
      default: throw new Error(`unexpected ${m.type}`)
    }
    assert.ok(again.equals(f), `${m.type} round trip`)
  }
})

test('fuzz: 200 000 mutated frames; the decoder returns a message or throws STREAM_MALFORMED, nothing else', () => {
  const r = createSeededRandom(testSeed('stream wire fuzz', 22))
  const seeds = [...samples().filter(([n]) => n !== 'meta').map(([, f]) => payload(f)), ...Array.from({ length: 40 }, () => payload(randomMessage(r)))]
  let ok = 0
  let malformed = 0
  for (let i = 0; i < 200_000; i++) {
    const base = seeds[r.int(seeds.length)]!
    let m: Buffer
    const how = r.int(4)
    if (how === 0) { m = Buffer.from(base); for (let k = 1 + r.int(4); k > 0; k--) m[r.int(m.length)] = r.int(256) } else if (how === 1) m = base.subarray(0, r.int(base.length + 1))
    else if (how === 2) m = Buffer.concat([base, r.bytes(1 + r.int(8))])
    else { m = Buffer.from(base); m[0] = r.int(256) }
    try {
      wire.decodeMessage(m)
      ok++
    } catch (err) {
      if (!CanopyError.is(err, 'STREAM_MALFORMED')) throw err
      malformed++
    }
  }
  assert.ok(ok > 1000 && malformed > 100_000, `ok ${ok}, malformed ${malformed}`)
})

test.run()
