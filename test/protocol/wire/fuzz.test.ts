// Fuzz of the envelope decoder (fixed header + body through the CBOR door):
// one million seeded inputs, half valid datagrams of every type mutated
// (mostly in the body), half generated from a CBOR grammar that likes the
// dangerous corners (tags, indefinite lengths, floats, deep nesting, huge
// lengths, duplicate keys). Every input must end in a value or DECODE_INVALID,
// none may take more than a few ms, and the heap must stay flat. A slice also
// goes through the signature check (openEnvelope).
//
//   CANOPY_FUZZ_INPUTS=n   another count (the default is the issue's 1 000 000)

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { CanopyError } from '../../../src/errors'
import { keyPairFromSeed } from '../../../src/crypto'
import { createSeededRandom, type Random } from '../../../src/hal'
import { WIRE_DATAGRAM_BYTES_MAX } from '../../../src/limits'
import { decodeEnvelope, encodeBody, MESSAGE_NAMES, MESSAGE_TYPES, openEnvelope, sealEnvelope } from '../../../src/protocol'
import { testSeed } from '../../helpers/seed'
import { randomBody } from '../../helpers/wire'

const INPUTS = Number(process.env.CANOPY_FUZZ_INPUTS ?? 1_000_000)
const SIGNED_INPUTS = Math.min(2_000, INPUTS)
const SLOW_MS = 5

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const INTERESTING = [0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x20, 0x3f, 0x40, 0x5f, 0x60, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc2, 0xc6, 0xd8, 0xd9, 0xda, 0xdb, 0xf4, 0xf7, 0xf9, 0xfb, 0xff]

function mutate (rnd: Random, seed: Buffer, corpus: Buffer[]): Buffer {
  let b = Buffer.from(seed)
  const n = 1 + rnd.int(6)
  for (let i = 0; i < n; i++) {
    // Mostly inside the body (after the 44-byte header, before the signature), where the CBOR door works.
    const bodyLen = Math.max(1, b.length - 44 - 64)
    const at = rnd.int(10) < 8 ? 44 + rnd.int(bodyLen) : rnd.int(Math.max(1, b.length))
    switch (rnd.int(8)) {
      case 0: b[at] = b[at]! ^ (1 << rnd.int(8)); break
      case 1: b[at] = INTERESTING[rnd.int(INTERESTING.length)]!; break
      case 2: b[at] = rnd.int(256); break
      case 3: b = Buffer.concat([b.subarray(0, at), rnd.bytes(1 + rnd.int(8)), b.subarray(at)]); break
      case 4: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + rnd.int(8)))]); break
      case 5: b = b.subarray(0, Math.max(at, rnd.int(4) === 0 ? 0 : 44 + 65)); break
      case 6: { const other = corpus[rnd.int(corpus.length)]!; const from = rnd.int(other.length); b = Buffer.concat([b.subarray(0, at), other.subarray(from, from + 1 + rnd.int(64))]); break }
      default: { const len = 1 + rnd.int(16); const chunk = b.subarray(at, at + len); b = Buffer.concat([b.subarray(0, at), chunk, chunk, b.subarray(at + len)]) }
    }
  }
  return b.length > WIRE_DATAGRAM_BYTES_MAX + 16 ? b.subarray(0, WIRE_DATAGRAM_BYTES_MAX + 16) : b
}

/** A CBOR head for major type m with argument v, sometimes in a longer form than needed. */
function head (rnd: Random, m: number, v: number): number[] {
  const t = m << 5
  const form = v < 24 && rnd.int(4) !== 0 ? 0 : v < 256 && rnd.int(3) !== 0 ? 1 : v < 65536 && rnd.int(2) === 0 ? 2 : 3
  if (form === 0) return [t | v]
  if (form === 1) return [t | 24, v & 0xff]
  if (form === 2) return [t | 25, (v >> 8) & 0xff, v & 0xff]
  return [t | 26, (v >>> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]
}

const KEYS = ['r', 'c', 'p', 'q', 'l', 'h', 'd', 't', 'n', 'a', 'u', 'w', 'b', 'f', '__proto__', 'constructor']

/** A random CBOR item, biased to what breaks decoders. */
function gen (rnd: Random, out: number[], depth: number, budget: { items: number }): void {
  if (--budget.items < 0) { out.push(0); return }
  const k = rnd.int(depth > 12 ? 6 : 16)
  switch (k) {
    case 0: out.push(...head(rnd, 0, rnd.int(2) === 0 ? rnd.int(30) : rnd.int(0xffff_ffff))); return
    case 1: out.push(...head(rnd, 1, rnd.int(1000))); return
    case 2: { const len = rnd.int(40); out.push(...head(rnd, 2, len), ...rnd.bytes(len)); return }
    case 3: { const s = KEYS[rnd.int(KEYS.length)]!; out.push(...head(rnd, 3, s.length), ...Buffer.from(s)); return }
    case 4: out.push([0xf4, 0xf5, 0xf6, 0xf7, 0xf0, 0xf8][rnd.int(6)]!, ...(rnd.int(2) === 0 ? [] : [rnd.int(256)])); return
    case 5: out.push([0xf9, 0xfa, 0xfb][rnd.int(3)]!, ...rnd.bytes(8).subarray(0, 2 << rnd.int(3))); return
    case 6: out.push(0x1b, ...rnd.bytes(8)); return // 64-bit integers, also above 2^53
    case 7: out.push([0x5b, 0x7b, 0x9b, 0xbb][rnd.int(4)]!, ...rnd.bytes(8)); return // 64-bit lengths
    case 8: case 9: {
      const n = rnd.int(6)
      out.push(...head(rnd, 4, rnd.int(20) === 0 ? rnd.int(100000) : n))
      for (let i = 0; i < n; i++) gen(rnd, out, depth + 1, budget)
      return
    }
    case 10: case 11: {
      const n = rnd.int(6)
      out.push(...head(rnd, 5, n))
      for (let i = 0; i < n; i++) {
        if (rnd.int(4) === 0) gen(rnd, out, depth + 1, budget)
        else { const key = KEYS[rnd.int(KEYS.length)]!; out.push(...head(rnd, 3, key.length), ...Buffer.from(key)) }
        gen(rnd, out, depth + 1, budget)
      }
      return
    }
    case 12: { // tags, the dangerous ones most of all
      const tags = [0, 1, 2, 3, 4, 5, 6, 14, 15, 27, 28, 29, 51, 64, 105, 258, 259, 55799, 0xdff9, 0xdffe, 0xdfff, rnd.int(70000)]
      const t = tags[rnd.int(tags.length)]!
      out.push(...head(rnd, 6, t))
      gen(rnd, out, depth + 1, budget)
      return
    }
    case 13: { // indefinite containers and strings, sometimes unterminated
      out.push([0x5f, 0x7f, 0x9f, 0xbf][rnd.int(4)]!)
      for (let i = 0; i < rnd.int(4); i++) gen(rnd, out, depth + 1, budget)
      if (rnd.int(3) !== 0) out.push(0xff)
      return
    }
    case 14: for (let i = 0; i < 1 + rnd.int(200); i++) out.push(0x81); out.push(0); return // deep nesting
    default: out.push(rnd.int(256)); // a raw byte
  }
}

function generated (rnd: Random): Buffer {
  const body: number[] = []
  gen(rnd, body, 0, { items: 300 })
  if (rnd.int(10) === 0) body.push(...rnd.bytes(rnd.int(4))) // trailing bytes
  const len = Math.min(body.length, WIRE_DATAGRAM_BYTES_MAX - 44 - 64)
  const out = Buffer.alloc(44 + len + 64)
  out[0] = 0x43; out[1] = 0x4e; out[2] = 1
  out[3] = MESSAGE_TYPES[MESSAGE_NAMES[rnd.int(MESSAGE_NAMES.length)]!]
  rnd.bytes(32).copy(out, 4)
  out.writeUInt32BE(rnd.int(2 ** 21), 36)
  out.writeUInt32BE(1 + rnd.int(0xffff_fffe), 40)
  Buffer.from(body.slice(0, len)).copy(out, 44)
  rnd.bytes(64).copy(out, 44 + len)
  return out
}

test(`fuzz: ${INPUTS} mutated and generated datagrams end in a value or DECODE_INVALID, fast, with a flat heap`, () => {
  const rnd = createSeededRandom(testSeed('envelope fuzz'))
  const pair = keyPairFromSeed(Buffer.alloc(32, 3))
  const corpus: Buffer[] = []
  for (let i = 0; i < 256; i++) {
    const name = MESSAGE_NAMES[i % MESSAGE_NAMES.length]!
    corpus.push(sealEnvelope(name, pair.publicRaw, pair.privateKey, 1 + i, encodeBody(name, randomBody(name, rnd))))
  }
  const outcomes = { accepted: 0, refused: 0 }
  const reasons = new Map<string, number>()
  const slow: string[] = []
  let worstMs = 0
  let heapAtTenth = 0
  const t0 = performance.now()
  for (let i = 0; i < INPUTS; i++) {
    if (i === Math.floor(INPUTS / 10)) { gc(); heapAtTenth = process.memoryUsage().heapUsed }
    const input = i % 2 === 0 ? mutate(rnd, corpus[rnd.int(corpus.length)]!, corpus) : generated(rnd)
    const open = i < SIGNED_INPUTS
    const s = performance.now()
    const r = attempt(input, open)
    const ms = performance.now() - s
    if (ms > worstMs) worstMs = ms
    if (ms > SLOW_MS) {
      // A GC pause or the shared machine, or the input itself? Time it again.
      const again = Math.min(...[0, 1, 2].map(() => { const s2 = performance.now(); attempt(input, open); return performance.now() - s2 }))
      if (again > SLOW_MS) slow.push(`${input.toString('hex')} (${again.toFixed(1)} ms)`)
    }
    if (r === 'accepted') outcomes.accepted++
    else { outcomes.refused++; reasons.set(r, (reasons.get(r) ?? 0) + 1) }
  }
  gc()
  const growth = process.memoryUsage().heapUsed - heapAtTenth
  const seconds = (performance.now() - t0) / 1000
  console.log(`  fuzz: ${INPUTS} inputs in ${seconds.toFixed(1)} s; accepted ${outcomes.accepted}, refused ${outcomes.refused}; worst ${worstMs.toFixed(2)} ms; heap ${(growth / 1048576).toFixed(1)} MiB after the first tenth`)
  console.log(`  reasons: ${[...reasons].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')}`)
  assert.equal(slow, [], 'inputs slower than a few ms')
  assert.ok(growth < 16 * 1048576, `heap grew ${growth} bytes`)
  assert.ok(outcomes.accepted > 0 && reasons.size >= 10, 'the fuzzer reaches both outcomes and many refusals')
})

function attempt (input: Buffer, open: boolean): string {
  try {
    if (open) openEnvelope(input)
    else decodeEnvelope(input)
    return 'accepted'
  } catch (err) {
    if (!CanopyError.is(err, 'DECODE_INVALID')) throw new Error(`not a coded error for ${input.toString('hex')}: ${String(err)}`)
    return String(err.detail?.reason)
  }
}

test.run()
