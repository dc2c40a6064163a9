// A scripted, seeded workload for the flash cache and a model of what it
// acknowledged, shared by the power-cut, fault and lab suites. The model keeps
// three sets: pieces that must be there (acknowledged, not evicted or deleted
// since), pieces that may be there (in flight, evicted, or being deleted) and
// pieces that must not (acknowledged deletes). check() holds a recovered
// store to all of it.

import { createHash } from 'node:crypto'
import * as assert from 'uvu/assert'
import { createSeededRandom, type FlashGeometry } from '../../src/hal'
import { SimClock } from '../../src/hal'
import type { FlashCache, FlashCacheOptions, VerifyReads } from '../../src/flash-cache'

export const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** The two ways a read can check a piece: suites that must hold for both run each. */
export const VERIFY_MODES: VerifyReads[] = ['crc32', 'sha256']

export const GEOMETRY: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 1024, blockCount: 20 }

export function cacheOptions (model?: Model, extra: Partial<FlashCacheOptions> = {}): FlashCacheOptions {
  return {
    clock: new SimClock(),
    bytesMax: 6000,
    piecesMax: 24,
    writeBudgetBytesPerDay: 1 << 30,
    checkpointIntervalBytesMin: 2048,
    onEvict: (key) => model?.evicted(key),
    ...extra
  }
}

/** Distinct pieces the workload draws from: sizes from 1 to 400 bytes, content from the seed. */
export function piecePool (seed: number, count = 90, sizeMax = 400): Buffer[] {
  const r = createSeededRandom(seed)
  return Array.from({ length: count }, (_, i) => {
    const b = r.bytes(1 + r.int(sizeMax))
    b[0] = i // distinct even when the random bytes collide
    return b
  })
}

export type Op =
  | { kind: 'put', piece: number }
  | { kind: 'get', piece: number }
  | { kind: 'delete', piece: number }
  | { kind: 'pin', piece: number }
  | { kind: 'unpin', piece: number }

export function script (seed: number, length: number, poolSize: number): Op[] {
  const r = createSeededRandom(seed)
  const ops: Op[] = []
  for (let i = 0; i < length; i++) {
    const x = r.float()
    const piece = r.int(poolSize)
    ops.push(x < 0.5 ? { kind: 'put', piece } : x < 0.75 ? { kind: 'get', piece } : x < 0.88 ? { kind: 'delete', piece } : x < 0.95 ? { kind: 'pin', piece } : { kind: 'unpin', piece })
  }
  return ops
}

export class Model {
  readonly must = new Map<string, Buffer>()
  readonly may = new Map<string, Buffer>()
  readonly gone = new Set<string>()
  readonly byKey = new Map<string, Buffer>()

  constructor (pool: Buffer[]) { for (const b of pool) this.byKey.set(sha(b), b) }

  putStarted (key: string): void { this.gone.delete(key); if (!this.must.has(key)) this.may.set(key, this.byKey.get(key)!) }
  putAcked (key: string): void { this.may.delete(key); this.gone.delete(key); this.must.set(key, this.byKey.get(key)!) }
  deleteStarted (key: string): void { if (this.must.delete(key)) this.may.set(key, this.byKey.get(key)!) }
  deleteAcked (key: string): void { this.may.delete(key); this.gone.add(key) }
  evicted (key: string): void { if (this.must.delete(key)) this.may.set(key, this.byKey.get(key)!) }
  /** After a recovery: what is there now is the new truth. */
  settle (present: Iterable<string>): void {
    this.may.clear()
    this.must.clear()
    for (const k of present) { this.must.set(k, this.byKey.get(k)!); this.gone.delete(k) }
  }
}

/**
 * Run ops in order on the cache, keeping the model. Stops at the first
 * rejection that is a power cut (returns its index) and checks the bounds
 * after every operation. Other rejections (CACHE_FULL with everything pinned)
 * are allowed and recorded.
 */
export async function runOps (cache: FlashCache, ops: Op[], pool: Buffer[], model: Model, bound: { bytes: number, pieces: number }): Promise<number> {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    const bytes = pool[op.piece]!
    const key = sha(bytes)
    try {
      if (op.kind === 'put') {
        model.putStarted(key)
        await cache.put(key, bytes)
        model.putAcked(key)
      } else if (op.kind === 'get') {
        const got = await cache.get(key)
        if (got !== undefined) assert.ok(got.equals(bytes), 'a get returns the bytes that were put')
      } else if (op.kind === 'delete') {
        model.deleteStarted(key)
        await cache.delete(key)
        model.deleteAcked(key)
      } else if (op.kind === 'pin') {
        cache.pin(key)
      } else {
        cache.unpin(key)
      }
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'FLASH_POWER_CUT') return i
      if (code !== 'CACHE_FULL') throw err
    }
    const s = cache.stats()
    assert.ok(s.bytes <= bound.bytes + s.pieceBytesMax, `bytes ${s.bytes} within the bound ${bound.bytes} plus one piece`)
    assert.ok(s.pieces <= bound.pieces, `pieces ${s.pieces} within ${bound.pieces}`)
  }
  return ops.length
}

/** Everything a recovered store must satisfy against the model; returns what it holds. */
export async function check (cache: FlashCache, model: Model, bound: { bytes: number, pieces: number }, where: string): Promise<Map<string, string>> {
  const held = new Map<string, string>()
  for (const key of [...cache.hashes()]) {
    const got = await cache.get(key)
    assert.ok(got !== undefined, `${where}: listed piece ${key.slice(0, 12)} reads back`)
    assert.is(sha(got), key, `${where}: a returned piece matches its hash`)
    const expected = model.byKey.get(key)
    assert.ok(expected !== undefined && got.equals(expected), `${where}: no phantom pieces`)
    assert.ok(!model.gone.has(key), `${where}: an acknowledged delete stays deleted (${key.slice(0, 12)})`)
    held.set(key, sha(got))
  }
  for (const [key, bytes] of model.must) {
    assert.ok(cache.has(key), `${where}: acknowledged piece ${key.slice(0, 12)} survived`)
    const got = await cache.get(key)
    assert.ok(got !== undefined && got.equals(bytes), `${where}: acknowledged piece ${key.slice(0, 12)} verifies`)
  }
  const s = cache.stats()
  assert.ok(s.bytes <= bound.bytes + s.pieceBytesMax, `${where}: bytes ${s.bytes} within the bound`)
  assert.ok(s.pieces <= bound.pieces, `${where}: pieces within the bound`)
  return held
}
