// Flash cache figures (issue 4): put and get throughput on the Linux flash
// twin beside raw fs write+fsync / read of the same bytes in the same run;
// recovery time for 10 000 pieces; bytes programmed per byte stored under
// eviction churn; memory per indexed piece.

import { createHash } from 'node:crypto'
import { execSync } from 'node:child_process'
import { promises as fsp, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import * as v8 from 'node:v8'
import * as vm from 'node:vm'
import { FlashCache, type FlashCacheOptions } from '../src/flash-cache'
import { createRealClock, createSeededRandom, FileFlash, SimClock, SimFlash, type FlashGeometry } from '../src/hal'
import { tempDir } from '../test/helpers/tmp'
import { median, ms, type Bench, type Row } from './table'

const ROUNDS = 5
/** Throughput rounds (each a fresh store and a fresh raw file): more, since this machine is shared and noisy. */
const THROUGHPUT_ROUNDS = 7
const PIECE_BYTES = 256 * 1024
const PIECES = 48
/** Writers at once in the concurrent put workload (a transfer engine receiving from several peers). */
const WRITERS = 8
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

/** Page cache dropped (root only): the next reads come from the disk, for the store and the raw file alike. */
function dropCaches (): boolean {
  try {
    execSync('sync')
    writeFileSync('/proc/sys/vm/drop_caches', '3')
    return true
  } catch {
    return false
  }
}

/** `jobs` run by `writers` async loops at once, each loop taking the next job when its last one finished. */
async function inParallel (writers: number, jobs: number, run: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: writers }, async () => { while (next < jobs) await run(next++) }))
}

/**
 * Raw group commit: a write is acknowledged after an fsync that started after
 * the write finished (the rule the store's group commit keeps).
 */
function rawGroupCommit (fh: fsp.FileHandle): (bytes: Buffer, position: number) => Promise<void> {
  let running: Promise<void> | null = null
  let waiting: Promise<void> | null = null
  const syncAfter = (): Promise<void> => {
    if (running === null) {
      running = fh.sync().finally(() => { running = null })
      return running
    }
    waiting ??= running.then(() => { waiting = null; return syncAfter() })
    return waiting
  }
  return async (bytes, position) => {
    await fh.write(bytes, 0, bytes.length, position)
    await syncAfter()
  }
}

type Figures = Record<'put' | 'rawPut' | 'putC' | 'rawPutC' | 'rawPutG' | 'get' | 'rawGet' | 'rawGetSha' | 'getCold' | 'rawGetCold' | 'getSha' | 'getShaCold' | 'rawGetColdBlocks', number>

/**
 * One round on a fresh store and a fresh raw file, the same bytes. Puts:
 * sequential (each durable before the next is given) and WRITERS at once;
 * raw: write+fsync each, sequential and WRITERS at once, and WRITERS at once
 * sharing fsyncs (raw group commit). Gets, one at a time: hot (page cache
 * warm, median of three passes) and cold (page cache dropped before every
 * pass, for both), each after an untimed warm-up pass; the raw reads go into
 * one reused buffer (a get returns a new one each time, which costs it
 * more). Which goes first alternates between rounds.
 */
async function throughputRound (seed: number, storeFirst: boolean): Promise<Figures> {
  const set = pieces(PIECES, PIECE_BYTES, seed)
  const total = PIECES * PIECE_BYTES
  const dir = tempDir('canopy-bench-cache-')
  const timed = async (fn: () => Promise<void>): Promise<number> => { const t0 = performance.now(); await fn(); return mbps(total, performance.now() - t0) }
  // Reads: a warm-up pass (the JIT, the allocator), then three timed passes, the median; the store and the raw file alike.
  const passes = async (fn: () => Promise<void>, cold = false): Promise<number> => {
    const speeds: number[] = []
    await fn()
    for (let i = 0; i < 3; i++) {
      if (cold && !dropCaches()) return NaN
      speeds.push(await timed(fn))
    }
    return median(speeds)
  }
  const rawFile = async (name: string): Promise<fsp.FileHandle> => await fsp.open(join(dir.path, name), 'w+')
  const buf = Buffer.alloc(PIECE_BYTES)
  try {
    const f = {} as Figures
    const caches: FlashCache[] = []
    const open = async (name: string): Promise<FlashCache> => {
      const c = await FlashCache.open(await FileFlash.open(join(dir.path, name), GEOMETRY), options())
      caches.push(c)
      return c
    }
    const raws: fsp.FileHandle[] = []
    const steps: Array<Array<() => Promise<void>>> = [
      [async () => {
        const cache = await open('seq')
        f.put = await timed(async () => { for (const p of set) await cache.put(p.hash, p.bytes) })
        await cache.flush()
      }, async () => {
        const fh = await rawFile('raw-seq.bin')
        raws.push(fh)
        f.rawPut = await timed(async () => { for (const [i, p] of set.entries()) { await fh.write(p.bytes, 0, p.bytes.length, i * PIECE_BYTES); await fh.sync() } })
      }],
      [async () => {
        const cache = await open('conc')
        f.putC = await timed(() => inParallel(WRITERS, PIECES, async (i) => { await cache.put(set[i]!.hash, set[i]!.bytes) }))
        await cache.flush()
      }, async () => {
        const fh = await rawFile('raw-conc.bin')
        f.rawPutC = await timed(() => inParallel(WRITERS, PIECES, async (i) => { await fh.write(set[i]!.bytes, 0, PIECE_BYTES, i * PIECE_BYTES); await fh.sync() }))
        await fh.close()
        const gh = await rawFile('raw-group.bin')
        const write = rawGroupCommit(gh)
        f.rawPutG = await timed(() => inParallel(WRITERS, PIECES, (i) => write(set[i]!.bytes, i * PIECE_BYTES)))
        await gh.close()
      }],
      [async () => {
        const cache = caches[0]!
        f.get = await passes(async () => { for (const p of set) if ((await cache.get(p.hash)) === undefined) throw new Error('missing piece') })
      }, async () => {
        const fh = raws[0]!
        f.rawGet = await passes(async () => { for (let i = 0; i < PIECES; i++) await fh.read(buf, 0, PIECE_BYTES, i * PIECE_BYTES) })
        // What any reader that checks a piece against its hash must do on top of the read.
        f.rawGetSha = await passes(async () => { for (let i = 0; i < PIECES; i++) { await fh.read(buf, 0, PIECE_BYTES, i * PIECE_BYTES); sha(buf) } })
      }],
      [async () => {
        const cache = caches[0]!
        f.getCold = await passes(async () => { for (const p of set) if ((await cache.get(p.hash)) === undefined) throw new Error('missing piece') }, true)
      }, async () => {
        const fh = raws[0]!
        f.rawGetCold = await passes(async () => { for (let i = 0; i < PIECES; i++) await fh.read(buf, 0, PIECE_BYTES, i * PIECE_BYTES) }, true)
        // Not a target: the same reads from files laid out like the Linux twin's (one file per erase block),
        // to tell the twin's layout from the store's own work.
        const perBlock = Math.floor(GEOMETRY.blockBytes / PIECE_BYTES)
        const files: fsp.FileHandle[] = []
        for (let b = 0; b * perBlock < PIECES; b++) {
          const h = await rawFile(`raw-block-${b}.bin`)
          files.push(h)
          for (let i = 0; i < perBlock && b * perBlock + i < PIECES; i++) await h.write(set[b * perBlock + i]!.bytes, 0, PIECE_BYTES, i * PIECE_BYTES)
          await h.sync()
        }
        f.rawGetColdBlocks = await passes(async () => { for (let i = 0; i < PIECES; i++) await files[Math.floor(i / perBlock)]!.read(buf, 0, PIECE_BYTES, (i % perBlock) * PIECE_BYTES) }, true)
        for (const h of files) await h.close()
      }]
    ]
    for (const [store, raw] of steps) {
      if (storeFirst) { await store!(); await raw!() } else { await raw!(); await store!() }
    }
    for (const c of caches) await c.close()
    // The same store reopened with verifyReads 'sha256': every get hashes the piece again too.
    const strict = await FlashCache.open(await FileFlash.open(join(dir.path, 'seq'), GEOMETRY), options({ verifyReads: 'sha256' }))
    const getAll = async (): Promise<void> => { for (const p of set) if ((await strict.get(p.hash)) === undefined) throw new Error('missing piece') }
    f.getSha = await passes(getAll)
    f.getShaCold = await passes(getAll, true)
    await strict.close()
    for (const fh of raws) await fh.close()
    return f
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
    const rounds: Figures[] = []
    for (let i = 0; i < THROUGHPUT_ROUNDS; i++) rounds.push(await throughputRound(i + 1, i % 2 === 0))
    // Medians of each figure, and the median of the ratios each round measured (same round, same bytes).
    const m = (k: keyof Figures): number => median(rounds.map((x) => x[k]))
    const r = (a: keyof Figures, b: keyof Figures): number => median(rounds.map((x) => x[a] / x[b]))
    const x = (v: number): string => `${v.toFixed(2)}×`
    const rec = await recovery()
    const amp = await amplification(PIECE_BYTES)
    const ampSmall = await amplification(16 * 1024)
    const mem = await memoryPerPiece()
    const label = `${PIECES} × ${PIECE_BYTES / 1024} KiB, median of ${THROUGHPUT_ROUNDS} rounds`
    const cold = !Number.isNaN(m('getCold'))
    return [
      { what: `put, sequential, each durable before the next (${label})`, value: fmt(m('put')), baseline: `fs write+fsync ${fmt(m('rawPut'))}`, ratio: x(r('put', 'rawPut')), target: '≥ 0.70×', ok: r('put', 'rawPut') >= 0.7 },
      { what: `put, ${WRITERS} writers at once`, value: fmt(m('putC')), baseline: `fs write+fsync, ${WRITERS} at once ${fmt(m('rawPutC'))}`, ratio: x(r('putC', 'rawPutC')), target: '≥ 0.70×', ok: r('putC', 'rawPutC') >= 0.7 },
      { what: `put, ${WRITERS} writers at once, against raw group commit`, value: fmt(m('putC')), baseline: `fs write, shared fsync ${fmt(m('rawPutG'))}`, ratio: x(r('putC', 'rawPutG')) },
      cold
        ? { what: 'get, page cache dropped before each pass (reads by CRC-32, the default)', value: fmt(m('getCold')), baseline: `fs read ${fmt(m('rawGetCold'))}`, ratio: x(r('getCold', 'rawGetCold')), target: '≥ 0.70×', ok: r('getCold', 'rawGetCold') >= 0.7 }
        : { what: 'get, page cache dropped: not measured (needs root for /proc/sys/vm/drop_caches)', value: '-' },
      ...(cold
        ? [
            { what: 'same, verifyReads sha256', value: fmt(m('getShaCold')), baseline: `fs read ${fmt(m('rawGetCold'))}`, ratio: x(r('getShaCold', 'rawGetCold')) },
            { what: 'same (CRC-32), against raw reads from one file per 2 MiB block (the twin\'s layout)', value: fmt(m('getCold')), baseline: `fs read ${fmt(m('rawGetColdBlocks'))}`, ratio: x(r('getCold', 'rawGetColdBlocks')) }
          ]
        : []),
      { what: 'get, page cache hot (reads by CRC-32)', value: fmt(m('get')), baseline: `fs read ${fmt(m('rawGet'))}`, ratio: x(r('get', 'rawGet')) },
      { what: 'same, verifyReads sha256', value: fmt(m('getSha')), baseline: `fs read ${fmt(m('rawGet'))}`, ratio: x(r('getSha', 'rawGet')) },
      { what: 'same, against a read that also hashes', value: fmt(m('getSha')), baseline: `fs read + SHA-256 ${fmt(m('rawGetSha'))}`, ratio: x(r('getSha', 'rawGetSha')) },
      { what: `recovery, ${rec.pieces} pieces, after a stop without close`, value: ms(rec.unclean), target: '≤ 1 s', ok: rec.unclean <= 1000 },
      { what: 'recovery, same, after a clean close', value: ms(rec.clean) },
      { what: 'recovery, same, no checkpoint (full replay)', value: ms(rec.scan) },
      { what: 'bytes programmed per byte stored, 256 KiB pieces, 3× bound put, 25 % reads', value: `${amp.toFixed(3)}`, target: '≤ 1.2', ok: amp <= 1.2 },
      { what: 'same, 16 KiB pieces', value: `${ampSmall.toFixed(3)}`, target: '≤ 1.2', ok: ampSmall <= 1.2 },
      { what: 'memory per indexed piece (V8 heap)', value: `${mem.toFixed(0)} B` }
    ]
  }
}
