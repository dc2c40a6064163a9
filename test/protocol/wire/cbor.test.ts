// The CBOR door: what it accepts, every class of hostile input it refuses
// (with the one error code), the tag overrides inside cbor-x itself, and
// seeded properties: our encoder writes exactly cbor-x's bytes, and what it
// writes decodes back to the same values.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { CanopyError } from '../../../src/errors'
import { createSeededRandom, type Random } from '../../../src/hal'
import { decodeCbor, decodeCborAs, encodeCbor, REFUSED_TAGS, type DecodeLimits } from '../../../src/protocol/wire/cbor'
import { body, uint } from '../../../src/protocol/wire/schema'
import { testSeed } from '../../helpers/seed'

const LIMITS: DecodeLimits = { bytesMax: 4096, depthMax: 4, itemsMax: 64, containerCountMax: 16 }
const h = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex')

function reason (bytes: Uint8Array, limits: DecodeLimits = LIMITS): string {
  try {
    decodeCbor(bytes, limits)
  } catch (err) {
    assert.ok(CanopyError.is(err, 'DECODE_INVALID'), `only DECODE_INVALID, got ${String(err)}`)
    return String((err as CanopyError).detail?.reason)
  }
  return 'accepted'
}

test('decodes the values our formats use', () => {
  const v = decodeCbor(encodeCbor({ a: 1, b: 'text', c: Buffer.from([1, 2, 3]), d: [0, 4294967295], e: true, f: null }), LIMITS) as Record<string, unknown>
  assert.is(v.a, 1)
  assert.is(v.b, 'text')
  assert.equal([...(v.c as Uint8Array)], [1, 2, 3])
  assert.equal(v.d, [0, 4294967295])
  assert.is(v.e, true)
  assert.is(v.f, null)
  assert.is(decodeCbor(h('3903e7'), LIMITS), -1000, 'negative integers')
  assert.is(decodeCbor(h('1b001fffffffffffff'), LIMITS), Number.MAX_SAFE_INTEGER, 'an 8-byte integer up to 2^53-1 is a number')
})

test('every tag is refused unless allowed, the dangerous ones by cbor-x itself too', () => {
  for (const tag of [0, 1, ...REFUSED_TAGS, 64, 0xdff9, 0xdffe, 0xdfff, 55799]) {
    const head = tag < 24 ? (0xc0 | tag).toString(16) : tag < 256 ? `d8${tag.toString(16).padStart(2, '0')}` : `d9${tag.toString(16).padStart(4, '0')}`
    assert.is(reason(h(`${head} 41 00`)), 'tag', `tag ${tag}`)
  }
  // Defence in depth: cbor-x's own decoder (the same module instance) throws our error for the tags we override.
  const { Decoder } = createRequire(__filename)('cbor-x/decode-no-eval') as typeof import('cbor-x')
  const raw = new Decoder({ useRecords: false } as never)
  for (const tag of REFUSED_TAGS) {
    const head = tag < 24 ? (0xc0 | tag).toString(16) : tag < 256 ? `d8${tag.toString(16).padStart(2, '0')}` : `d9${tag.toString(16).padStart(4, '0')}`
    try {
      raw.decode(h(`${head} 84 00 00 00 00`))
      assert.unreachable(`cbor-x decoded tag ${tag}`)
    } catch (err) {
      assert.ok(CanopyError.is(err, 'DECODE_INVALID'), `tag ${tag}: ${String(err)}`)
    }
  }
})

test('an allowed tag passes; refused and record tags cannot be allowed', () => {
  assert.equal(decodeCbor(h('c1 1a 5f5e1000'), { ...LIMITS, allowTags: new Set([1]) }) instanceof Date, true)
  for (const t of [2, 51, 0xdfff]) {
    try {
      decodeCbor(h('00'), { ...LIMITS, allowTags: new Set([t]) })
      assert.unreachable()
    } catch (err) {
      assert.ok(CanopyError.is(err, 'ASSERTION'), `allowing tag ${t} is a programming error`)
    }
  }
})

test('nesting, item and container bounds; deep input fails fast without recursion trouble', () => {
  assert.is(reason(h('81 81 81 81 00')), 'accepted')
  assert.is(reason(h('81 81 81 81 81 00')), 'depth')
  assert.is(reason(Buffer.concat([Buffer.alloc(60_000, 0x81), h('00')]), { ...LIMITS, bytesMax: 65_536 }), 'depth')
  assert.is(reason(h('a1 61 61 a1 61 61 a1 61 61 a1 61 61 a1 61 61 00')), 'depth', 'maps nest too')
  assert.is(reason(h('90 ' + '00'.repeat(16))), 'accepted')
  assert.is(reason(h('91 ' + '00'.repeat(17))), 'container')
  assert.is(reason(h('b1 ' + '6161 00'.repeat(17))), 'container')
  assert.is(reason(Buffer.concat([h('8f'), Buffer.alloc(15, 0x8f), Buffer.alloc(200, 0)]), { ...LIMITS, depthMax: 16 }), 'items')
})

test('lengths beyond the input, huge heads, trailing and truncated bytes', () => {
  assert.is(reason(h('5b ffffffffffffffff')), 'range')
  assert.is(reason(h('9b 0000000100000000')), 'container')
  assert.is(reason(h('9a ffffffff')), 'container')
  assert.is(reason(h('5a 0000ffff 00')), 'truncated')
  assert.is(reason(h('8f 00')), 'truncated', 'an array longer than the bytes left')
  assert.is(reason(h('bf')), 'indefinite')
  assert.is(reason(h('00 00')), 'trailing')
  assert.is(reason(h('19 00')), 'truncated')
  assert.is(reason(h('1c')), 'reserved')
  assert.is(reason(Buffer.alloc(0)), 'empty')
  assert.is(reason(Buffer.alloc(5000)), 'size', 'size is checked before anything else')
})

test('indefinite lengths, floats, undefined and odd simple values are refused', () => {
  for (const x of ['5f 41 00 ff', '7f 61 61 ff', '9f 00 ff', 'bf 61 61 00 ff', 'ff']) assert.is(reason(h(x)), 'indefinite', x)
  for (const x of ['f9 3c00', 'fa 3f800000', 'fb 3ff0000000000000']) assert.is(reason(h(x)), 'simple', x)
  for (const x of ['f7', 'f0', 'f8 20']) assert.is(reason(h(x)), 'simple', x)
  assert.is(reason(h('f4')), 'accepted')
  assert.is(reason(h('f9 3c00'), { ...LIMITS, allowFloats: true }), 'accepted')
})

test('map keys: text or unsigned integers, unique (also across encodings), no __proto__', () => {
  assert.is(reason(h('a2 6161 00 6162 00')), 'accepted')
  assert.is(reason(h('a2 6161 00 6161 01')), 'duplicate')
  assert.is(reason(h('a2 6161 00 7801 61 01')), 'duplicate', 'the same key with a longer length head')
  assert.is(reason(h('a2 01 00 6131 00')), 'duplicate', '1 and "1" are one key once decoded')
  assert.is(reason(h('a2 01 00 1801 00')), 'duplicate')
  assert.is(reason(h('a1 20 00')), 'key', 'negative integer key')
  assert.is(reason(h('a1 41 61 00')), 'key', 'byte string key')
  assert.is(reason(h('a1 81 00 00')), 'key', 'array key')
  assert.is(reason(h('a1 69 5f5f70726f746f5f5f 00')), 'key', '__proto__')
})

test('text must be valid UTF-8, in values and keys', () => {
  assert.is(reason(h('62 c3a9')), 'accepted')
  assert.is(reason(h('62 c328')), 'utf8')
  assert.is(reason(h('63 eda080')), 'utf8', 'a surrogate')
  assert.is(reason(h('a1 61 ff 00')), 'utf8')
})

test('schema failures are DECODE_INVALID naming the field', () => {
  const spec = body({ n: uint(1, 10) })
  assert.equal(decodeCborAs(encodeCbor({ n: 3, extra: 'ignored' }), spec, LIMITS, 'test'), { n: 3 })
  try {
    decodeCborAs(encodeCbor({ n: 11 }), spec, LIMITS, 'test')
    assert.unreachable()
  } catch (err) {
    assert.ok(CanopyError.is(err, 'DECODE_INVALID'))
    assert.match((err as Error).message, /"n"/)
  }
})

test('cbor-x runs without its native accelerator here, as in the bundle', () => {
  const noEval = createRequire(__filename)('cbor-x/decode-no-eval') as { isNativeAccelerationEnabled: boolean }
  assert.is(noEval.isNativeAccelerationEnabled, false)
})

test('nothing else in src imports cbor-x: every decode goes through the door', () => {
  const offenders: string[] = []
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name)
      if (e.isDirectory()) walk(path)
      else if (path.endsWith('.ts') && !path.endsWith(join('wire', 'cbor.ts')) && /from 'cbor-x|require\('cbor-x/.test(readFileSync(path, 'utf8'))) offenders.push(path)
    }
  }
  walk(join(__dirname, '..', '..', '..', 'src'))
  assert.equal(offenders, [])
})

/** Byte strings as hex, so values compare whatever their Buffer/Uint8Array class. */
function normal (v: unknown): unknown {
  if (v instanceof Uint8Array) return `bytes:${Buffer.from(v).toString('hex')}`
  if (Array.isArray(v)) return v.map(normal)
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normal(x)]))
  return v
}

function randomValue (rnd: Random, depth: number): unknown {
  const k = rnd.int(depth >= 3 ? 4 : 6)
  switch (k) {
    case 0: return rnd.int(2) === 0 ? rnd.int(24) : rnd.int(0xffff_ffff)
    case 1: return rnd.bytes(rnd.int(40)).toString('base64')
    case 2: return Buffer.from(rnd.bytes(rnd.int(40)))
    case 3: return [true, false, null][rnd.int(3)]
    case 4: return Array.from({ length: rnd.int(6) }, () => randomValue(rnd, depth + 1))
    default: return Object.fromEntries(Array.from({ length: rnd.int(6) }, (_, i) => [`k${i}${rnd.int(9)}`, randomValue(rnd, depth + 1)]))
  }
}

test('property: our encodings of random values decode to the same values', () => {
  const rnd = createSeededRandom(testSeed('cbor round trip'))
  const limits: DecodeLimits = { bytesMax: 16_384, depthMax: 4, itemsMax: 4096, containerCountMax: 64 }
  for (let i = 0; i < 2_000; i++) {
    const v = randomValue(rnd, 0)
    assert.equal(normal(decodeCbor(encodeCbor(v), limits)), normal(v))
  }
})

/** cbor-x's own encoder with the options encodeCbor used to pass it: the reference our encoder must match byte for byte. */
const { Encoder } = createRequire(__filename)('cbor-x/index-no-eval') as typeof import('cbor-x')
const reference = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false, useFloat32: 0 } as never)

const EDGE_NUMBERS = [0, 23, 24, 255, 256, 65535, 65536, 0xffff_ffff, 2 ** 32, 2 ** 53 - 1, -1, -24, -25, -256, -257, -65536, -65537,
  -(2 ** 31), -(2 ** 31) - 1, -(2 ** 32), -(2 ** 32) - 1, 0.5, -1.25, 1e300, Number.MAX_VALUE, Infinity, -Infinity, -0]
const TEXT = ['', 'a', 'é', '€', '😀', 'x'.repeat(23), 'x'.repeat(24), 'é'.repeat(12), 'x'.repeat(255), 'x'.repeat(256), '€'.repeat(100), 'y'.repeat(65536)]

function anyValue (rnd: Random, depth: number): unknown {
  switch (rnd.int(depth >= 3 ? 5 : 7)) {
    case 0: return EDGE_NUMBERS[rnd.int(EDGE_NUMBERS.length)]! + (rnd.int(4) === 0 ? rnd.int(3) - 1 : 0)
    case 1: return rnd.int(3) === 0 ? (rnd.int(2) === 0 ? -1 : 1) * rnd.int(2 ** 30) * 2 ** rnd.int(24) : rnd.float() * 1e6 - 5e5
    case 2: return rnd.int(3) === 0 ? TEXT[rnd.int(TEXT.length)] : Array.from({ length: rnd.int(30) }, () => String.fromCodePoint([0x41, 0xe9, 0x20ac, 0x1f600][rnd.int(4)]! + rnd.int(20))).join('')
    case 3: return Buffer.from(rnd.bytes([0, 23, 24, 255, 256, 300][rnd.int(6)]!))
    case 4: return [true, false, null][rnd.int(3)]
    case 5: return Array.from({ length: [0, 5, 23, 24, 30][rnd.int(5)]! }, () => anyValue(rnd, depth + 1))
    default: return Object.fromEntries(Array.from({ length: [0, 3, 23, 24, 30][rnd.int(5)]! }, (_, i) => [rnd.int(8) === 0 ? `${i}` : `key${i}é${rnd.int(9)}`, anyValue(rnd, depth + 1)]))
  }
}

test('property: our encoder writes the bytes cbor-x wrote, for every kind of value we encode', () => {
  for (const v of [...EDGE_NUMBERS, ...TEXT, new Uint8Array([1, 2]), Buffer.alloc(70_000, 7), Array.from({ length: 70_000 }, () => 0), null, true, false, {}, []]) {
    assert.is(encodeCbor(v).toString('hex'), Buffer.from(reference.encode(v)).toString('hex'), `value ${String(v).slice(0, 40)}`)
  }
  const big = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]))
  assert.is(encodeCbor(big).toString('hex'), Buffer.from(reference.encode(big)).toString('hex'), 'a map of 300 entries')
  const rnd = createSeededRandom(testSeed('cbor encoder vs cbor-x'))
  for (let i = 0; i < 3_000; i++) {
    const v = anyValue(rnd, 0)
    const ours = encodeCbor(v)
    const theirs = Buffer.from(reference.encode(v))
    if (!ours.equals(theirs)) assert.unreachable(`differs from cbor-x for ${JSON.stringify(v)}: ${ours.toString('hex')} vs ${theirs.toString('hex')}`)
  }
})

test('the encoder refuses what is not ours to encode, and writes a lone surrogate as U+FFFD', () => {
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  for (const v of [undefined, 1n, new Map(), new Date(0), new Set(), () => 1, { a: undefined }, cycle]) {
    try {
      encodeCbor(v)
      assert.unreachable(`encoded ${String(v)}`)
    } catch (err) {
      assert.ok(CanopyError.is(err, 'ASSERTION'), String(err))
    }
  }
  assert.is(encodeCbor('a\ud800').toString('hex'), '6461efbfbd', 'valid UTF-8 that our decoder accepts')
  assert.is(decodeCbor(encodeCbor('a\ud800'), LIMITS), 'a\ufffd')
})

test.run()
