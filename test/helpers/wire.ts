// Random message bodies of every type, for property tests, the fuzz corpus and fixtures.

import type { Random } from '../../src/hal'
import type { Body, MessageName } from '../../src/protocol'

function randomRanges (rnd: Random, max = 5): Array<[number, number]> {
  const out: Array<[number, number]> = []
  let at = rnd.int(10)
  for (let i = 0; i < rnd.int(max + 1); i++) {
    const len = 1 + rnd.int(100)
    out.push([at, at + len])
    at += len + 1 + rnd.int(50)
  }
  return out
}

const criteria = (rnd: Random): Body<'ELECT'> => ({ w: rnd.int(2) === 1, b: rnd.int(10_000), f: rnd.int(100_000), u: rnd.int(1e9), h: 1 + rnd.int(65535) })
const contentOf = (rnd: Random): string => (rnd.int(2) === 0 ? rnd.bytes(32).toString('hex') : `https://example.com/${rnd.bytes(8).toString('hex')}`)

export function randomBody<N extends MessageName> (name: N, rnd: Random): Body<N> {
  const r = 1 + rnd.int(0xffff_fffe)
  const c = contentOf(rnd)
  const bodies: { [K in MessageName]: () => Body<K> } = {
    NEED: () => ({ r, c, p: rnd.int(2) === 0 ? undefined : randomRanges(rnd), q: rnd.int(2) === 1 }),
    HAVE: () => ({ r: rnd.int(2) === 0 ? 0 : r, c, p: rnd.int(2) === 0 ? undefined : randomRanges(rnd), l: rnd.int(101), h: 1 + rnd.int(65535) }),
    FOUND: () => ({ r, c, f: rnd.int(2) === 1 }),
    DOWNLOADING: () => ({ r: rnd.int(2) === 0 ? 0 : r, c, p: randomRanges(rnd), d: rnd.int(1e9), t: rnd.int(1e9), l: rnd.int(101), h: 1 + rnd.int(65535) }),
    PROVIDER: () => ({ r, c, n: rnd.bytes(16), a: `10.0.${rnd.int(256)}.${rnd.int(256)}`, h: 1 + rnd.int(65535), u: 1 + rnd.int(65535) }),
    ELECT: () => criteria(rnd),
    ELECTED: () => ({ ...criteria(rnd), t: rnd.int(1e6) }),
    HEARTBEAT: () => ({ ...criteria(rnd), t: rnd.int(1e6) })
  }
  return bodies[name]() as Body<N>
}

