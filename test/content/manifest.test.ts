// Manifests: written and read back, signature over the exact bytes, every
// tampering refused, trust, bounds, piece sizes, and a committed golden file.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkTrust, parseManifest, pieceSizeFor, sha256, signManifest } from '../../src/content'
import { formatPublicKey, keyPairFromSeed } from '../../src/crypto'
import { MANIFEST_BYTES_MAX, PIECE_BYTES_MAX, PIECE_BYTES_MIN } from '../../src/limits'

const KEY = keyPairFromSeed(Buffer.alloc(32, 1))
const PUB = formatPublicKey(KEY.publicRaw)
const FIELDS = { name: 'os-update.img', size: 40_000, pieceSize: 16_384, pieces: ['a', 'b', 'c'].map((x) => sha256(Buffer.from(x))), urls: ['http://cdn.example/os-update.img'] }
const GOLDEN = join(__dirname, '..', 'fixtures', 'content', 'manifest-v1.canopy.json')

test('signed, read back, named by the SHA-256 of its bytes, trusted by its key only', () => {
  const m = signManifest(FIELDS, KEY)
  const back = parseManifest(m.bytes)
  assert.is(back.id, sha256(m.bytes))
  assert.equal({ ...back, bytes: undefined }, { ...m, bytes: undefined })
  assert.is(back.publisher, PUB)
  assert.ok(m.bytes.toString().endsWith('"}\n'))
  assert.is(checkTrust(back, [PUB]), back)
  const other = formatPublicKey(keyPairFromSeed(Buffer.alloc(32, 2)).publicRaw)
  try { checkTrust(back, [other]); assert.unreachable() } catch (e: any) {
    assert.is(e.code, 'PUBLISHER_UNTRUSTED')
    assert.ok(e.message.includes(PUB), 'says which key to trust')
  }
})

test('every flipped byte is refused (bad signature, bad JSON or bad field), never a crash', () => {
  const m = signManifest(FIELDS, KEY)
  let refused = 0
  for (let i = 0; i < m.bytes.length - 1; i++) {
    const bad = Buffer.from(m.bytes)
    bad[i] = bad[i]! ^ 0x01
    try {
      parseManifest(bad)
    } catch (e: any) {
      assert.is(e.code, 'MANIFEST_INVALID')
      refused++
    }
  }
  assert.is(refused, m.bytes.length - 1)
})

test('a body re-signed by another key is another publisher; fields outside their bounds are refused', () => {
  const k2 = keyPairFromSeed(Buffer.alloc(32, 9))
  assert.not.equal(signManifest(FIELDS, k2).publisher, PUB)
  const refuse = (f: Partial<typeof FIELDS>): string => {
    try { signManifest({ ...FIELDS, ...f }, KEY); return 'accepted' } catch (e: any) { return e.code }
  }
  assert.is(refuse({ pieces: FIELDS.pieces.slice(1) }), 'MANIFEST_INVALID')
  assert.is(refuse({ pieceSize: 20_000 }), 'MANIFEST_INVALID')
  assert.is(refuse({ pieceSize: PIECE_BYTES_MAX * 2, pieces: [FIELDS.pieces[0]!] }), 'MANIFEST_INVALID')
  assert.is(refuse({ urls: [] }), 'MANIFEST_INVALID')
  assert.is(refuse({ urls: ['ftp://x/y'] }), 'MANIFEST_INVALID')
  assert.is(refuse({ name: '' }), 'MANIFEST_INVALID')
  assert.is(refuse({ pieces: ['nothex', ...FIELDS.pieces.slice(1)] }), 'MANIFEST_INVALID')
  const huge = Buffer.alloc(MANIFEST_BYTES_MAX + 1, 0x20)
  assert.throws(() => parseManifest(huge), (e: any) => e.code === 'MANIFEST_INVALID')
  assert.throws(() => parseManifest(Buffer.from('{"canopy":1}')), (e: any) => e.code === 'MANIFEST_INVALID')
  const m = signManifest(FIELDS, KEY)
  assert.throws(() => parseManifest(Buffer.concat([m.bytes, Buffer.from(' ')])), (e: any) => e.code === 'MANIFEST_INVALID', 'nothing after the signature')
  const v2 = Buffer.from(m.bytes.toString().replace('"canopy":1', '"canopy":2'))
  assert.throws(() => parseManifest(v2), (e: any) => e.code === 'MANIFEST_INVALID', 'an unknown format version')
})

test('piece size: 1 MiB, halved for small files down to the minimum', () => {
  assert.is(pieceSizeFor(2 ** 31), PIECE_BYTES_MAX)
  assert.is(pieceSizeFor(16 * PIECE_BYTES_MAX), PIECE_BYTES_MAX)
  assert.is(pieceSizeFor(16 * PIECE_BYTES_MAX - 1), PIECE_BYTES_MAX / 2)
  assert.is(pieceSizeFor(0), PIECE_BYTES_MIN)
  assert.is(pieceSizeFor(1_000), PIECE_BYTES_MIN)
})

test('golden: the committed v1 manifest still parses to the same content', () => {
  const bytes = readFileSync(GOLDEN)
  const m = parseManifest(bytes)
  assert.is(m.id, sha256(bytes))
  assert.is(m.id, 'a2b4773fb0e0c00bbd90b33238e5172383a0009d8a7c256aae8a01c5a87190cf')
  assert.is(m.name, FIELDS.name)
  assert.is(m.publisher, PUB)
  assert.equal(m.pieces, FIELDS.pieces)
})

test.run()
