// The envelope codec: round trips for every message type (property), the
// signature over the exact bytes and per-type namespace (checked with
// tweetnacl too), the fixed header's refusals, and the body schemas.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import nacl from 'tweetnacl'
import { CanopyError } from '../../../src/errors'
import { keyPairFromSeed, signDomain, domainBytes } from '../../../src/crypto'
import { createSeededRandom } from '../../../src/hal'
import { CONTENT_URL_BYTES_MAX, PIECE_RANGES_COUNT_MAX, WIRE_DATAGRAM_BYTES_MAX } from '../../../src/limits'
import {
  decodeBody, decodeEnvelope, encodeBody, encodeCbor, MESSAGE_NAMES, MESSAGE_TYPES, openEnvelope, parseEnvelope, sealEnvelope,
  signingDomain
} from '../../../src/protocol'
import { testSeed } from '../../helpers/seed'
import { randomBody } from '../../helpers/wire'

const pair = keyPairFromSeed(Buffer.alloc(32, 9))

function reason (f: () => unknown): string {
  try {
    f()
  } catch (err) {
    assert.ok(CanopyError.is(err, 'DECODE_INVALID'), `only DECODE_INVALID, got ${String(err)}`)
    return String((err as CanopyError).detail?.reason)
  }
  return 'accepted'
}

/** Decoded bodies leave optional fields undefined and flags false: compare in that form. */
const canonical = (b: object): unknown => JSON.parse(JSON.stringify(b, (_k, v: unknown) => (v instanceof Uint8Array || (typeof v === 'object' && v !== null && (v as { type?: string }).type === 'Buffer') ? Buffer.from(v as Uint8Array).toString('hex') : v)))

test('property: every message type seals and opens to the same header and body', () => {
  const rnd = createSeededRandom(testSeed('envelope round trip'))
  for (let i = 0; i < 400; i++) {
    const name = MESSAGE_NAMES[i % MESSAGE_NAMES.length]!
    const value = randomBody(name, rnd)
    const counter = 1 + rnd.int(2 ** 31) * 2 ** rnd.int(22)
    const data = sealEnvelope(name, pair.publicRaw, pair.privateKey, counter, encodeBody(name, value))
    assert.ok(data.length <= WIRE_DATAGRAM_BYTES_MAX)
    assert.is(data[3], MESSAGE_TYPES[name])
    const opened = openEnvelope(data)
    assert.is(opened.name, name)
    assert.is(opened.counter, counter)
    assert.ok(opened.senderKey.equals(pair.publicRaw))
    assert.equal(canonical(opened.body), canonical({ ...value, ...Object.fromEntries(Object.entries(value).filter(([, v]) => v === undefined).map(([k]) => [k, undefined])) }))
  }
})

test('the signature covers every byte: any single-byte change fails', () => {
  const data = sealEnvelope('NEED', pair.publicRaw, pair.privateKey, 42, encodeBody('NEED', { r: 7, c: 'ab'.repeat(32), p: [[0, 4]], q: false }))
  assert.is(reason(() => openEnvelope(data)), 'accepted')
  const seen = new Set<string>()
  for (let i = 0; i < data.length; i++) {
    const bad = Buffer.from(data)
    bad[i] = bad[i]! ^ 0x01
    const r = reason(() => openEnvelope(bad))
    assert.is.not(r, 'accepted', `byte ${i}`)
    seen.add(r)
  }
  assert.ok(seen.has('signature') && seen.has('magic') && seen.has('version') && seen.has('type'), [...seen].join(','))
})

test('signatures live in a per-type namespace and are standard ed25519 (tweetnacl agrees)', () => {
  const data = sealEnvelope('HAVE', pair.publicRaw, pair.privateKey, 3, encodeBody('HAVE', { r: 1, c: 'cd'.repeat(32), l: 0, h: 80 }))
  const p = parseEnvelope(data)
  assert.is(signingDomain('HAVE'), 'canopy wire v1 HAVE')
  assert.ok(nacl.sign.detached.verify(domainBytes('canopy wire v1 HAVE', p.signed), p.signature, pair.publicRaw))
  // The same bytes signed under another type's namespace do not verify.
  const forged = Buffer.from(data)
  signDomain(pair.privateKey, 'canopy wire v1 NEED', p.signed).copy(forged, data.length - 64)
  assert.is(reason(() => openEnvelope(forged)), 'signature')
  // Another key's signature does not verify either.
  const other = keyPairFromSeed(Buffer.alloc(32, 1))
  const wrong = Buffer.from(data)
  signDomain(other.privateKey, 'canopy wire v1 HAVE', p.signed).copy(wrong, data.length - 64)
  assert.is(reason(() => openEnvelope(wrong)), 'signature')
})

test('the fixed header refuses junk, other versions and types, and bad counters', () => {
  const good = sealEnvelope('FOUND', pair.publicRaw, pair.privateKey, 5, encodeBody('FOUND', { r: 1, c: 'ef'.repeat(32), f: false }))
  const edit = (i: number, v: number): Buffer => { const b = Buffer.from(good); b[i] = v; return b }
  assert.is(reason(() => parseEnvelope(good.subarray(0, 108))), 'size')
  assert.is(reason(() => parseEnvelope(Buffer.concat([good, Buffer.alloc(WIRE_DATAGRAM_BYTES_MAX)]))), 'size')
  assert.is(reason(() => parseEnvelope(edit(0, 0x58))), 'magic')
  assert.is(reason(() => parseEnvelope(edit(2, 2))), 'version')
  assert.is(reason(() => parseEnvelope(edit(3, 0))), 'type')
  assert.is(reason(() => parseEnvelope(edit(3, 200))), 'type')
  const zero = Buffer.from(good); zero.fill(0, 36, 44)
  assert.is(reason(() => parseEnvelope(zero)), 'counter')
  const huge = Buffer.from(good); huge.fill(0xff, 36, 44)
  assert.is(reason(() => parseEnvelope(huge)), 'counter')
  const top = sealEnvelope('FOUND', pair.publicRaw, pair.privateKey, Number.MAX_SAFE_INTEGER, encodeBody('FOUND', { r: 1, c: 'ef'.repeat(32), f: false }))
  assert.is(parseEnvelope(top).counter, Number.MAX_SAFE_INTEGER)
  assert.equal([...top.subarray(0, 4)], [0x43, 0x4e, 1, MESSAGE_TYPES.FOUND])
})

test('the largest bodies fit one datagram; a larger one is refused when sealed', () => {
  const url = `https://example.com/${'x'.repeat(CONTENT_URL_BYTES_MAX - 20)}`
  const ranges = Array.from({ length: PIECE_RANGES_COUNT_MAX }, (_, i) => [0xffff_0000 + i * 10, 0xffff_0000 + i * 10 + 5] as [number, number])
  for (const [name, value] of [
    ['NEED', { r: 0xffff_ffff, c: url, p: ranges, q: true }],
    ['HAVE', { r: 0xffff_ffff, c: url, p: ranges, l: 100, h: 65535 }],
    ['DOWNLOADING', { r: 0xffff_ffff, c: url, p: ranges, d: 0xffff_ffff, t: 0xffff_ffff, l: 100, h: 65535 }]
  ] as const) {
    const data = sealEnvelope(name, pair.publicRaw, pair.privateKey, Number.MAX_SAFE_INTEGER, encodeBody(name, value as never))
    assert.ok(data.length <= WIRE_DATAGRAM_BYTES_MAX, `${name}: ${data.length} bytes`)
    assert.is(decodeEnvelope(data).name, name)
  }
  try {
    sealEnvelope('NEED', pair.publicRaw, pair.privateKey, 1, Buffer.alloc(2000))
    assert.unreachable()
  } catch (err) {
    assert.ok(CanopyError.is(err, 'LIMIT_REACHED'))
  }
  try {
    encodeBody('HAVE', { r: 2 ** 40, c: url, l: 0, h: 1 })
    assert.unreachable()
  } catch (err) {
    assert.ok(CanopyError.is(err, 'ASSERTION'), 'integers beyond 32 bits would travel as floats: refused')
  }
})

test('body schemas: fields checked, unknown keys ignored, content ids and ranges strict', () => {
  const c = Buffer.alloc(32, 0xab)
  const ok = (v: unknown): string => reason(() => decodeBody('NEED', encodeCbor(v)))
  assert.is(ok({ r: 1, c }), 'accepted')
  assert.equal(decodeBody('NEED', encodeCbor({ r: 1, c, later: 'a newer field' })), { r: 1, c: 'ab'.repeat(32), p: undefined, q: false })
  assert.is(ok({ r: 0, c }), 'schema', 'request id 0 is reserved for pushes')
  assert.is(ok({ c }), 'schema')
  assert.is(ok({ r: 1, c: Buffer.alloc(31) }), 'schema')
  assert.is(ok({ r: 1, c: 'ftp://x/y' }), 'schema')
  assert.is(ok({ r: 1, c: 'https://x/y' }), 'accepted')
  assert.is(ok({ r: 1, c, p: [0, 4, 2, 6] }), 'schema', 'overlapping ranges')
  assert.is(ok({ r: 1, c, p: [4, 4] }), 'schema', 'empty range')
  assert.is(ok({ r: 1, c, p: [0, 4, 8] }), 'schema', 'odd length')
  assert.is(ok({ r: 1, c, p: [0, 4, 8, 9] }), 'accepted')
  assert.is(ok({ r: 1, c, q: 2 }), 'schema')
  assert.is(ok([1, c]), 'schema', 'not a map')
  assert.is(reason(() => decodeBody('PROVIDER', encodeCbor({ r: 1, c, n: Buffer.alloc(16), a: 'evil host', h: 1, u: 1 }))), 'schema')
  assert.is(reason(() => decodeBody('HEARTBEAT', encodeCbor({ w: 1, b: 1, f: 1, u: 1, h: 0, t: 0 }))), 'schema', 'port 0')
})

test.run()
