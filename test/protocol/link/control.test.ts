// The link's own messages: golden bytes, the proof transcript, and a fuzz
// run of the control decoder.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { signDomain, verifyDomain } from '../../../src/crypto'
import { CanopyError } from '../../../src/errors'
import { createSeededRandom } from '../../../src/hal'
import { createKeyPair } from '../../../src/identity'
import { FRAME_HEADER_BYTES, PROOF_DOMAIN } from '../../../src/protocol/link'
import { decodeControl, encodeClose, encodeHello, encodePing, encodeProof, proofTranscript } from '../../../src/protocol/link/control'
import { golden } from '../../helpers/fixtures'
import { testSeed } from '../../helpers/seed'

const a = createKeyPair(createSeededRandom(31))
const b = createKeyPair(createSeededRandom(32))
const helloA = encodeHello({ version: 1, nonce: Buffer.alloc(32, 0xa1), publicKey: a.publicRaw, listenPort: 8788, channels: [1], extension: Buffer.alloc(0) })
const helloB = encodeHello({ version: 1, nonce: Buffer.alloc(32, 0xb2), publicKey: b.publicRaw, listenPort: 0, channels: [1, 2], extension: Buffer.from('x25519:later') })
const proofA = encodeProof(signDomain(a.privateKey, PROOF_DOMAIN, proofTranscript(helloA, helloB, true)))

test('golden bytes of hello, proof, ping, pong, close', () => {
  for (const [name, made] of [['hello-a', helloA], ['hello-b', helloB], ['proof-a', proofA], ['ping', encodePing('ping', 7)], ['pong', encodePing('pong', 7)], ['close', encodeClose('dead')]] as const) {
    assert.ok(made.equals(golden(`link/${name}`, made)), name)
  }
  const h = decodeControl(helloB.subarray(FRAME_HEADER_BYTES))
  assert.is(h.type, 'hello')
  if (h.type === 'hello') {
    assert.equal(h.channels, [1, 2])
    assert.is(h.extension.toString(), 'x25519:later')
  }
})

test('a proof binds both hellos and the role: it does not verify for the other role or another handshake', () => {
  const sig = proofA.subarray(FRAME_HEADER_BYTES + 1)
  assert.ok(verifyDomain(a.publicRaw, PROOF_DOMAIN, proofTranscript(helloA, helloB, true), sig))
  assert.not.ok(verifyDomain(a.publicRaw, PROOF_DOMAIN, proofTranscript(helloA, helloB, false), sig), 'reflected as the responder')
  const otherB = encodeHello({ version: 1, nonce: Buffer.alloc(32, 0xb3), publicKey: b.publicRaw, listenPort: 0, channels: [1, 2], extension: Buffer.from('x25519:later') })
  assert.not.ok(verifyDomain(a.publicRaw, PROOF_DOMAIN, proofTranscript(helloA, otherB, true), sig), 'replayed on another connection')
})

test('fuzz: 200 000 mutated control payloads, only LINK_FRAME_INVALID escapes', () => {
  const r = createSeededRandom(testSeed('link control fuzz', 33))
  const seeds = [helloA, helloB, proofA, encodePing('ping', 1), encodeClose('normal')].map((f) => f.subarray(FRAME_HEADER_BYTES))
  let bad = 0
  for (let i = 0; i < 200_000; i++) {
    const base = seeds[r.int(seeds.length)]!
    const m = r.int(2) === 0 ? Buffer.from(base) : Buffer.concat([base.subarray(0, r.int(base.length + 1)), r.bytes(r.int(4))])
    for (let k = r.int(3); k > 0; k--) m[r.int(Math.max(1, m.length))] = r.int(256)
    try { decodeControl(m) } catch (err) { if (!CanopyError.is(err, 'LINK_FRAME_INVALID')) throw err; bad++ }
  }
  assert.ok(bad > 10_000)
})

test.run()
