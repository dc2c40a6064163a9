// Flash cache figures (issue 4): put and get throughput on the Linux flash
// twin beside raw fs write+fsync / read of the same bytes in the same run;
// recovery time for 10 000 pieces; bytes programmed per byte stored under
// eviction churn; memory per indexed piece.

import { createHash } from 'node:crypto'
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import * as v8 from 'node:v8'
import * as vm from 'node:vm'
import { FlashCache, type FlashCacheOptions } from '../src/flash-cache'
import { createRealClock, createSeededRandom, FileFlash, SimClock, SimFlash, type FlashGeometry } from '../src/hal'
import { tempDir } from '../test/helpers/tmp'
import { median, ms, ratio, type Bench, type Row } from './table'

const ROUNDS = 5
const PIECE_BYTES = 256 * 1024
const PIECES = 48
const GEOMETRY: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 2 * 1024 * 1024, blockCount: 24 }

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const mbps = (bytes: number, msTaken: number): number => bytes / 1048576 / (msTaken / 1000)
const fmt = (x: number): string => `${x.toFixed(0)} MB/s`

function pieces (n: number, size: number, seed: number): Array<{ hash: string, bytes: Buffer }> {
  const r = createSeededRandom(seed)
  return Array.from({ length: n }, () => { const bytes = r.bytes(size); return { hash: sha(bytes), bytes } })
}

const options = (extra: Partial<FlashCacheOptions> = {}): FlashCacheOptions =>
  ({ clock: createRealClock(), bytesMax: 32 * 1024 * 1024, piecesMax: 10_000, writeBudgetBytesPerDay: 2 ** 40, ...extra })

/** One round: the store's put and get, then raw write+fsync and read of the same bytes. */
async function throughputRound (seed: number): Promise<{ put: number, rawPut: number, get: number, rawGet: number, getVerified: number }> {
  const set = pieces(PIECES, PIECE_BYTES, seed)
  const total = PIECES * PIECE_BYTES
  const dir = tempDir('canopy-bench-cache-')
  try {
    const cache = await FlashCache.open(await FileFlash.open(join(dir.path, 'flash'), GEOMETRY), options())
    let t = performance.now()
    for (const p of set) await cache.put(p.hash, p.bytes)
    const put = mbps(total, performance.now() - t)
    await cache.flush()
    // Reads: three passes each, the median; the store and the raw file are treated alike.
    const passes = async (fn: () => Promise<void>): Promise<number> => {
      const speeds: number[] = []
      for (let i = 0; i < 3; i++) { const t0 = performance.now(); await fn(); speeds.push(mbps(total, performance.now() - t0)) }
      return median(speeds)
    }
    const get = await passes(async () => { for (const p of set) if ((await cache.get(p.hash)) === undefined) throw new Error('missing piece') })
    await cache.close()

    // Raw: the same bytes appended to one file, each made durable before the next (the least a store must do).
    const fh = await fsp.open(join(dir.path, 'raw.bin'), 'w+')
    try {
      t = performance.now()
      for (const [i, p] of set.entries()) {
        await fh.write(p.bytes, 0, p.bytes.length, i * PIECE_BYTES)
        await fh.sync()
      }
      const rawPut = mbps(total, performance.now() - t)
      const buf = Buffer.alloc(PIECE_BYTES)
      const rawGet = await passes(async () => { for (let i = 0; i < PIECES; i++) await fh.read(buf, 0, PIECE_BYTES, i * PIECE_BYTES) })
      // What any reader that checks a piece against its hash must do on top of the read.
      const getVerified = await passes(async () => { for (let i = 0; i < PIECES; i++) { await fh.read(buf, 0, PIECE_BYTES, i * PIECE_BYTES); sha(buf) } })
      return { put, rawPut, get, rawGet, getVerified }
    } finally {
      await fh.close()
    }
  } finally {
    dir.remove()
  }
}

/** Recovery of 10 000 pieces on the Linux twin: after a stop without close, after a clean close, and with no checkpoint at all. */
async function recovery (): Promise<{ unclean: number, clean: number, scan: number, pieces: number }> {
  const geometry: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 1024 * 1024, blockCount: 64 }
  const dir = tempDir('canopy-bench-recovery-')
  try {
    const set = pieces(10_000, 4096, 7)
    const open = async (): Promise<{ cache: FlashCache, flash: FileFlash, ms: number }> => {
      const flash = await FileFlash.open(dir.path, geometry)
      const t = performance.now()
      const cache = await FlashCache.open(flash, options({ bytesMax: 50 * 1024 * 1024, piecesMax: 10_000 }))
      return { cache, flash, ms: performance.now() - t }
    }
    // Filling: acknowledgements without a sync each (test-only flag), then one sync: the same bytes on flash.
    const flash = await FileFlash.open(dir.path, geometry)
    const filler = await FlashCache.open(flash, options({ bytesMax: 50 * 1024 * 1024, piecesMax: 10_000, unsafeSkipAckSync: true }))
    for (const p of set) await filler.put(p.hash, p.bytes)
    await filler.flush()
    await flash.sync()
    await flash.close() // no close(): as after a crash, the last checkpoint plus a tail
    const uncleanRuns: number[] = []
    let count = 0
    for (let i = 0; i < ROUNDS; i++) {
      const o = await open()
      uncleanRuns.push(o.ms)
      count = o.cache.stats().pieces
      await o.flash.close()
    }
    const closing = await open()
    await closing.cache.close()
    const cleanRuns: number[] = []
    for (let i = 0; i < ROUNDS; i++) { const o = await open(); cleanRuns.push(o.ms); await o.flash.close() }
    // No anchors: a full replay of every segment.
    const raw = await FileFlash.open(dir.path, geometry)
    await raw.erase(0); await raw.erase(1); await raw.sync(); await raw.close()
    const scanRuns: number[] = []
    for (let i = 0; i < ROUNDS; i++) { const o = await open(); scanRuns.push(o.ms); await o.flash.close() }
    return { unclean: median(uncleanRuns), clean: median(cleanRuns), scan: median(scanRuns), pieces: count }
  } finally {
    dir.remove()
  }
}

/** Bytes programmed per piece byte accepted, putting three times the bound with a quarter of reads (recency reshuffled). */
async function amplification (pieceBytes: number): Promise<number> {
  const cache = await FlashCache.open(new SimFlash(GEOMETRY), options({ clock: new SimClock() }))
  const r = createSeededRandom(pieceBytes)
  const n = Math.ceil((3 * 32 * 1024 * 1024) / pieceBytes)
  for (let i = 0; i < n; i++) {
    const bytes = r.bytes(pieceBytes)
    await cache.put(sha(bytes), bytes)
    if (r.float() < 0.25) {
      const held = cache.hashes()
      await cache.get(held[r.int(held.length)]!)
    }
  }
  await cache.flush()
  return cache.stats().writes.amplification
}

/** Heap bytes per indexed piece: a store of N pieces opened from its checkpoint, measured after GC. */
async function memoryPerPiece (): Promise<number> {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const n = 20_000
  const geometry: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 64 * 1024, blockCount: 64 }
  const flash = new SimFlash(geometry)
  const o = options({ clock: new SimClock(), bytesMax: 3 * 1024 * 1024, piecesMax: n })
  const filler = await FlashCache.open(flash, o)
  const r = createSeededRandom(11)
  for (let i = 0; i < n; i++) { const b = r.bytes(32); await filler.put(sha(b), b) }
  await filler.close()
  gc(); gc()
  const before = process.memoryUsage().heapUsed
  const cache = await FlashCache.open(flash.reboot(), o)
  gc(); gc()
  const after = process.memoryUsage().heapUsed
  if (cache.stats().pieces !== n) throw new Error(`indexed ${cache.stats().pieces} of ${n}`)
  return (after - before) / n
}

export const flashCacheBench: Bench = {
  name: 'flash cache (issue 4)',
  async run (): Promise<Row[]> {
    const rounds: Array<Awaited<ReturnType<typeof throughputRound>>> = []
    for (let i = 0; i < ROUNDS; i++) rounds.push(await throughputRound(i + 1))
    const m = (k: keyof typeof rounds[0]): number => median(rounds.map((x) => x[k]))
    const rec = await recovery()
    const amp = await amplification(PIECE_BYTES)
    const ampSmall = await amplification(16 * 1024)
    const mem = await memoryPerPiece()
    const label = `${PIECES} × ${PIECE_BYTES / 1024} KiB, median of ${ROUNDS}`
    return [
      { what: `put, Linux twin, durable each (${label})`, value: fmt(m('put')), baseline: `fs write+fsync ${fmt(m('rawPut'))}`, ratio: ratio(m('put'), m('rawPut')), target: '≥ 0.70×', ok: m('put') / m('rawPut') >= 0.7 },
      { what: 'get, Linux twin, SHA-256 verified', value: fmt(m('get')), baseline: `fs read ${fmt(m('rawGet'))}`, ratio: ratio(m('get'), m('rawGet')), target: '≥ 0.70×', ok: m('get') / m('rawGet') >= 0.7 },
      { what: 'get, against a read that also hashes', value: fmt(m('get')), baseline: `fs read + SHA-256 ${fmt(m('getVerified'))}`, ratio: ratio(m('get'), m('getVerified')) },
      { what: `recovery, ${rec.pieces} pieces, after a stop without close`, value: ms(rec.unclean), target: '≤ 1 s', ok: rec.unclean <= 1000 },
      { what: 'recovery, same, after a clean close', value: ms(rec.clean) },
      { what: 'recovery, same, no checkpoint (full replay)', value: ms(rec.scan) },
      { what: 'bytes programmed per byte stored, 256 KiB pieces, 3× bound put, 25 % reads', value: `${amp.toFixed(3)}`, target: '≤ 1.2', ok: amp <= 1.2 },
      { what: 'same, 16 KiB pieces', value: `${ampSmall.toFixed(3)}`, target: '≤ 1.2', ok: ampSmall <= 1.2 },
      { what: 'memory per indexed piece (V8 heap)', value: `${mem.toFixed(0)} B` }
    ]
  }
}
