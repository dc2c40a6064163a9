// Mutations for fuzzing byte decoders: the classic byte-level ones (flip,
// set, insert, delete, truncate, splice) plus text-protocol ones (duplicate,
// swap or stretch a line; drop in CR, LF, colon, space, NUL, high bytes).
// Seeded: a failure replays from the printed seed.

import type { Random } from '../../src/hal'

const SPECIALS = [0x0d, 0x0a, 0x3a, 0x20, 0x09, 0x00, 0x22, 0x2a, 0x7f, 0xff, 0x80, 0x3d, 0x2c]

function lines (b: Buffer): Buffer[] {
  const out: Buffer[] = []
  let at = 0
  for (;;) {
    const i = b.indexOf('\r\n', at)
    if (i === -1) { out.push(b.subarray(at)); return out }
    out.push(b.subarray(at, i + 2))
    at = i + 2
  }
}

/** One random mutation of b. */
export function mutateOnce (b: Buffer, r: Random, corpus: readonly Buffer[]): Buffer {
  const pos = (n = b.length): number => r.int(n + 1)
  switch (r.int(14)) {
    case 0: { // flip a bit
      if (b.length === 0) return b
      const c = Buffer.from(b); const i = r.int(c.length); c[i] = c[i]! ^ (1 << r.int(8)); return c
    }
    case 1: { // set a byte
      if (b.length === 0) return b
      const c = Buffer.from(b); c[r.int(c.length)] = r.int(256); return c
    }
    case 2: { // set a special byte
      if (b.length === 0) return b
      const c = Buffer.from(b); c[r.int(c.length)] = SPECIALS[r.int(SPECIALS.length)]!; return c
    }
    case 3: { // insert random bytes
      const i = pos(); return Buffer.concat([b.subarray(0, i), r.bytes(1 + r.int(16)), b.subarray(i)])
    }
    case 4: { // insert a special byte
      const i = pos(); return Buffer.concat([b.subarray(0, i), Buffer.from([SPECIALS[r.int(SPECIALS.length)]!]), b.subarray(i)])
    }
    case 5: { // delete a range
      const i = pos(); const n = 1 + r.int(32); return Buffer.concat([b.subarray(0, i), b.subarray(i + n)])
    }
    case 6: // truncate
      return b.subarray(0, pos())
    case 7: { // splice with another corpus entry
      const o = corpus[r.int(corpus.length)]!
      return Buffer.concat([b.subarray(0, pos()), o.subarray(r.int(o.length + 1))])
    }
    case 8: { // duplicate a line
      const ls = lines(b); const i = r.int(ls.length); ls.splice(i, 0, ls[i]!); return Buffer.concat(ls)
    }
    case 9: { // swap two lines
      const ls = lines(b); const i = r.int(ls.length); const j = r.int(ls.length); [ls[i], ls[j]] = [ls[j]!, ls[i]!]; return Buffer.concat(ls)
    }
    case 10: { // stretch: repeat a chunk many times (long lines, many headers)
      const i = pos(); const n = 1 + r.int(24); const chunk = b.subarray(i, i + n)
      return Buffer.concat([b.subarray(0, i), Buffer.alloc(chunk.length * (1 + r.int(120)), chunk.length > 0 ? chunk : Buffer.from('A')), b.subarray(i)])
    }
    case 11: { // change case of a range
      const c = Buffer.from(b); const i = pos(); const n = r.int(16)
      for (let k = i; k < Math.min(c.length, i + n); k++) c[k] = c[k]! ^ 0x20
      return c
    }
    case 12: { // replace a number with an extreme one
      const s = b.toString('latin1')
      const m = [...s.matchAll(/\d+/g)]
      if (m.length === 0) return b
      const x = m[r.int(m.length)]!
      const repl = ['0', '-1', '4294967296', '99999999999999999999', '1e9', '0x10', ''][r.int(7)]!
      return Buffer.from(s.slice(0, x.index) + repl + s.slice(x.index! + x[0].length), 'latin1')
    }
    default: // pure random bytes
      return r.bytes(r.int(64))
  }
}

/** Several stacked mutations, capped at maxBytes. */
export function mutate (b: Buffer, r: Random, corpus: readonly Buffer[], maxBytes: number): Buffer {
  let out = b
  const n = 1 + r.int(4)
  for (let i = 0; i < n; i++) {
    out = mutateOnce(out, r, corpus)
    if (out.length > maxBytes) out = out.subarray(0, maxBytes)
  }
  return out
}
