// Randomness behind an interface: crypto-strength for the device, a seeded
// generator for simulations and randomized tests (which print their seed).

import { randomBytes, randomInt } from 'node:crypto'

export interface Random {
  /** n random bytes. */
  bytes (n: number): Buffer
  /** A float in [0, 1). */
  float (): number
  /** An integer in [0, maxExclusive). */
  int (maxExclusive: number): number
}

export function createCryptoRandom (): Random {
  return {
    bytes: (n) => randomBytes(n),
    float: () => randomInt(0, 2 ** 48 - 1) / 2 ** 48,
    int: (max) => (max <= 1 ? 0 : randomInt(0, max))
  }
}

/** sfc32: small, fast, good enough for simulation; never for keys on a device. */
export function createSeededRandom (seed: number): Random {
  let a = 0x9e3779b9 ^ seed
  let b = 0x243f6a88 ^ Math.imul(seed, 0x85ebca6b)
  let c = 0xb7e15162 ^ Math.imul(seed, 0xc2b2ae35)
  let d = 1
  const next = (): number => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0
    const t = (a + b | 0) + d | 0
    d = d + 1 | 0
    a = b ^ (b >>> 9)
    b = c + (c << 3) | 0
    c = (c << 21) | (c >>> 11)
    c = c + t | 0
    return t >>> 0
  }
  for (let i = 0; i < 15; i++) next()
  return {
    bytes (n) {
      const out = Buffer.allocUnsafe(n)
      for (let i = 0; i < n; i += 4) {
        const v = next()
        for (let j = 0; j < 4 && i + j < n; j++) out[i + j] = (v >>> (8 * j)) & 0xff
      }
      return out
    },
    float: () => next() / 4294967296,
    int: (max) => (max <= 1 ? 0 : Math.floor((next() / 4294967296) * max))
  }
}
