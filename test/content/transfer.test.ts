// The transfer engine on the simulated clock with fake sources: parallelism
// bounded per source, verification before storing, isolation of a corrupt
// peer after one piece, dropping failed and slow sources, endgame, resume,
// the origin kept to pieces no LAN source has, and a seeded random soak.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../src/errors'
import { SimClock, createSeededRandom } from '../../src/hal'
import { keyPairFromSeed } from '../../src/crypto'
import { pieceLength, sha256, signManifest, createTransfer, type Manifest, type PieceSource, type PieceStore, type SourceKind } from '../../src/content'
import { PIECE_PEER_TIMEOUT_MS, SOURCE_BUSY_BACKOFF_MS, SOURCE_FAILURES_MAX, TRANSFER_REQUESTS_COUNT_MAX, TRANSFER_STALL_MS } from '../../src/limits'
import { testSeed } from '../helpers/seed'

const KEY = keyPairFromSeed(Buffer.alloc(32, 7))
const PIECE = 16 * 1024

export function makeFile (seed: number, size: number, pieceSize = PIECE): { file: Buffer, m: Manifest } {
  const file = Buffer.from(createSeededRandom(seed).bytes(size))
  const pieces: string[] = []
  for (let at = 0; at < size; at += pieceSize) pieces.push(sha256(file.subarray(at, Math.min(size, at + pieceSize))))
  return { file, m: signManifest({ name: 'f.bin', size, pieceSize, pieces, urls: ['http://origin.test/f.bin'] }, KEY) }
}

/** A store that refuses bytes that do not hash to their name (as the flash cache does). */
export class MemStore implements PieceStore {
  readonly map = new Map<string, Buffer>()
  puts = 0
  has (h: string): boolean { return this.map.has(h) }
  async put (h: string, b: Buffer): Promise<void> {
    if (sha256(b) !== h) throw new CanopyError('CACHE_HASH_MISMATCH', 'bad bytes reached the store')
    this.puts++
    this.map.set(h, b)
  }
}

interface FakeOptions {
  slots?: number
  has?: (i: number) => boolean
  delayMs?: (i: number) => number
  /** Bytes to send instead (corrupt), or an error to fail with. */
  answer?: (i: number, good: Buffer) => Buffer | CanopyError
  ready?: () => boolean
}

interface Fake extends PieceSource { asked: number[], inFlight: number, maxInFlight: number, aborted: number, closed: boolean }

function fake (clock: SimClock, file: Buffer, m: Manifest, id: string, kind: SourceKind, o: FakeOptions = {}): Fake {
  const s: Fake = {
    id, kind, slots: o.slots ?? 2, asked: [], inFlight: 0, maxInFlight: 0, aborted: 0, closed: false,
    has: o.has ?? (() => true),
    ...(o.ready === undefined ? {} : { ready: o.ready }),
    fetch (i, signal) {
      s.asked.push(i)
      s.inFlight++
      s.maxInFlight = Math.max(s.maxInFlight, s.inFlight)
      const good = file.subarray(i * m.pieceSize, i * m.pieceSize + pieceLength(m, i))
      return new Promise((resolve, reject) => {
        const t = clock.setTimeout(() => {
          s.inFlight--
          const a = o.answer?.(i, good) ?? good
          if (a instanceof CanopyError) reject(a)
          else resolve(Buffer.from(a))
        }, o.delayMs?.(i) ?? 5)
        signal.addEventListener('abort', () => { t.cancel(); s.inFlight--; s.aborted++; reject(signal.reason) })
      })
    },
    close () { s.closed = true }
  }
  return s
}

async function until (clock: SimClock, cond: () => boolean, maxMs = 600_000): Promise<void> {
  for (let t = 0; !cond(); t += 10) {
    if (t > maxMs) throw new Error(`not reached within ${maxMs} ms of simulated time`)
    await clock.advance(10)
  }
}

function setup (size: number, seed = 1) {
  const clock = new SimClock()
  const { file, m } = makeFile(seed, size)
  const store = new MemStore()
  const events = { corrupt: [] as string[], failed: [] as string[], stored: 0 }
  const t = createTransfer(m, {
    store, clock,
    events: { corrupt: (s) => { events.corrupt.push(s.id) }, failed: (s) => { events.failed.push(s.id) }, stored: () => { events.stored++ } }
  })
  const joined = (): Buffer => Buffer.concat(m.pieces.map((h) => store.map.get(h)!))
  return { clock, file, m, store, t, events, joined }
}

test('pieces come in parallel from every source, never more than its slots at once, verified and in store', async () => {
  const { clock, file, m, t, joined } = setup(40 * PIECE + 123)
  const a = fake(clock, file, m, 'a', 'peer', { slots: 3, delayMs: () => 20 })
  const b = fake(clock, file, m, 'b', 'peer', { slots: 2, delayMs: () => 10 })
  t.add(a)
  t.add(b)
  await until(clock, () => t.state !== 'running')
  assert.is(t.state, 'done')
  assert.ok(joined().equals(file))
  assert.is(a.maxInFlight, 3)
  assert.is(b.maxInFlight, 2)
  assert.ok(a.asked.length > 5 && b.asked.length > 5, `both used: ${a.asked.length} / ${b.asked.length}`)
  assert.is(t.from.peer, file.length)
  assert.ok(a.closed && b.closed, 'sources released at the end')
})

test(`never more than ${TRANSFER_REQUESTS_COUNT_MAX} requests in flight for one transfer, however many sources`, async () => {
  const { clock, file, m, t } = setup(80 * PIECE)
  const fakes = [...Array(8).keys()].map((k) => fake(clock, file, m, `p${k}`, 'peer', { slots: 4, delayMs: () => 30 }))
  let max = 0
  for (const f of fakes) t.add(f)
  while (t.state === 'running') {
    max = Math.max(max, fakes.reduce((n, f) => n + f.inFlight, 0))
    await clock.advance(5)
  }
  assert.is(t.state, 'done')
  assert.is(max, TRANSFER_REQUESTS_COUNT_MAX)
})

test(`a slow store holds back requests: pieces fetched but not yet stored count toward the ${TRANSFER_REQUESTS_COUNT_MAX} (memory, cache writes)`, async () => {
  const clock = new SimClock()
  const { file, m } = makeFile(3, 60 * PIECE)
  const mem = new MemStore()
  let storing = 0
  let held = 0
  const store: PieceStore = {
    has: (h) => mem.has(h),
    put: async (h, b) => { storing++; await clock.sleep(200); storing--; await mem.put(h, b) }
  }
  const t = createTransfer(m, { store, clock })
  const o = fake(clock, file, m, 'origin', 'origin', { slots: 8, delayMs: () => 1 })
  const p = fake(clock, file, m, 'p', 'peer', { slots: 8, delayMs: () => 1 })
  t.add(o)
  t.add(p)
  while (t.state === 'running') {
    held = Math.max(held, storing + o.inFlight + p.inFlight)
    await clock.advance(1)
  }
  assert.is(t.state, 'done')
  assert.ok(held <= TRANSFER_REQUESTS_COUNT_MAX, `${held} pieces held at once`)
  assert.ok(held >= TRANSFER_REQUESTS_COUNT_MAX / 2, `still parallel: ${held}`)
})

test('resume: pieces already in the store are not fetched again', async () => {
  const { clock, file, m, store, joined } = setup(20 * PIECE)
  for (let i = 0; i < 20; i += 2) await store.put(m.pieces[i]!, file.subarray(i * PIECE, (i + 1) * PIECE))
  const t = createTransfer(m, { store, clock })
  assert.is(t.held, 10)
  const o = fake(clock, file, m, 'origin', 'origin', { slots: 4 })
  t.add(o)
  await until(clock, () => t.state === 'done')
  assert.equal(o.asked.sort((x, y) => x - y), [1, 3, 5, 7, 9, 11, 13, 15, 17, 19])
  assert.ok(joined().equals(file))
})

test('the origin is never asked for a piece a LAN peer holds: each piece crosses the WAN once', async () => {
  const { clock, file, m, t } = setup(30 * PIECE)
  const peer = fake(clock, file, m, 'p', 'peer', { slots: 1, has: (i) => i < 20, delayMs: () => 50 })
  const origin = fake(clock, file, m, 'origin', 'origin', { slots: 4, delayMs: () => 5 })
  t.add(peer)
  t.add(origin)
  await until(clock, () => t.state === 'done')
  assert.ok(origin.asked.every((i) => i >= 20), `origin asked for ${origin.asked.join(',')}`)
  assert.is(new Set(origin.asked).size, origin.asked.length, 'no piece twice from the origin')
  assert.is(peer.asked.length, 20)
  assert.is(t.from.origin, 10 * PIECE)
})

test('a peer that sends one corrupt piece is isolated at once: no more requests, closed, the piece fetched elsewhere, bad bytes never stored', async () => {
  const { clock, file, m, t, events, joined } = setup(24 * PIECE)
  const bad = fake(clock, file, m, 'bad', 'peer', { slots: 4, delayMs: () => 1, answer: (i, g) => (i === 0 ? Buffer.concat([g.subarray(0, 10), Buffer.from('x'), g.subarray(11)]) : g) })
  const good = fake(clock, file, m, 'good', 'peer', { slots: 2, delayMs: () => 20 })
  t.add(bad)
  t.add(good)
  await clock.advance(2)
  const askedWhenCaught = bad.asked.length
  await until(clock, () => t.state !== 'running')
  assert.is(t.state, 'done')
  assert.equal(events.corrupt, ['bad'])
  assert.ok(bad.closed, 'its connections closed')
  assert.is(bad.asked.length, askedWhenCaught, 'no request after the bad piece')
  assert.ok(good.asked.includes(0), 'piece 0 came from the good peer')
  assert.ok(joined().equals(file))
  assert.is(t.stats.corrupt, 1)
})

test('a peer sending a wrong length is isolated too (the length is checked before hashing)', async () => {
  const { clock, file, m, t, events } = setup(4 * PIECE)
  t.add(fake(clock, file, m, 'short', 'peer', { answer: (_i, g) => g.subarray(1) }))
  t.add(fake(clock, file, m, 'ok', 'peer', { delayMs: () => 30 }))
  await until(clock, () => t.state !== 'running')
  assert.is(t.state, 'done')
  assert.equal(events.corrupt, ['short'])
})

test(`a failing source is dropped after ${SOURCE_FAILURES_MAX} failures in a row and its pieces go elsewhere`, async () => {
  const { clock, file, m, t, events } = setup(10 * PIECE)
  const broken = fake(clock, file, m, 'broken', 'peer', { slots: 1, answer: () => new CanopyError('UPSTREAM_FAILED', 'reset') })
  const slow = fake(clock, file, m, 'slow', 'peer', { slots: 1, delayMs: () => 100 })
  t.add(broken)
  t.add(slow)
  await until(clock, () => t.state !== 'running')
  assert.is(t.state, 'done')
  assert.is(broken.asked.length, SOURCE_FAILURES_MAX)
  assert.ok(broken.closed)
  assert.is(events.failed.length, SOURCE_FAILURES_MAX)
  assert.not.ok(t.uses('broken'))
})

test('a stalled request times out and the piece is asked of another source', async () => {
  const { clock, file, m, t } = setup(3 * PIECE)
  const stuck = fake(clock, file, m, 'stuck', 'peer', { slots: 1, delayMs: (i) => (i === 0 ? 10 * PIECE_PEER_TIMEOUT_MS : 5) })
  t.add(stuck)
  await clock.advance(100)
  t.add(fake(clock, file, m, 'late', 'peer', { slots: 1, has: (i) => i === 0 }))
  await until(clock, () => t.state !== 'running')
  assert.is(t.state, 'done')
  assert.ok(clock.nowMs() >= PIECE_PEER_TIMEOUT_MS && clock.nowMs() < PIECE_PEER_TIMEOUT_MS + 2_000, `done at ${clock.nowMs()} ms`)
  assert.is(stuck.aborted, 1)
})

test('endgame: the last piece is raced by a second peer, the loser cancelled; the origin never gets a duplicate', async () => {
  const { clock, file, m, t } = setup(6 * PIECE)
  const slow = fake(clock, file, m, 'slow', 'peer', { slots: 6, delayMs: (i) => (i === 5 ? 5_000 : 5) })
  const origin = fake(clock, file, m, 'origin', 'origin', { slots: 2, has: () => true, delayMs: () => 1 })
  t.add(slow)
  t.add(origin)
  await clock.advance(50)
  assert.is(t.held, 5)
  assert.equal(origin.asked, [], 'the origin did not race the peer')
  const fast = fake(clock, file, m, 'fast', 'peer', { slots: 2, delayMs: () => 10 })
  t.add(fast)
  await until(clock, () => t.state !== 'running')
  assert.ok(clock.nowMs() < 1_000, 'finished by the duplicate, long before the slow copy')
  assert.equal(fast.asked, [5], `fast asked ${fast.asked.join(',')}`)
  assert.is(slow.aborted, 1)
  assert.is(t.stats.duplicates, 1)
})

test('a piece someone waits for is asked first; 404 means "ask elsewhere", 503 backs off without blame', async () => {
  const { clock, file, m, t, events } = setup(50 * PIECE)
  const order: number[] = []
  const lacking = fake(clock, file, m, 'lacking', 'peer', { slots: 1, answer: () => new CanopyError('CACHE_NOT_FOUND', '404') })
  let busy = 0
  const o = fake(clock, file, m, 'origin', 'origin', { slots: 1, answer: (i, g) => (busy++ === 0 ? new CanopyError('HTTP_UNAVAILABLE', '503') : (order.push(i), g)) })
  t.add(lacking)
  const wait = t.piece(42)
  t.add(o)
  await until(clock, () => order.length > 0)
  assert.ok(clock.nowMs() >= SOURCE_BUSY_BACKOFF_MS, 'the busy answer held the origin back')
  await wait
  assert.is(order[0], 42, 'the awaited piece first')
  await until(clock, () => t.state !== 'running')
  assert.is(t.state, 'done')
  assert.equal(events.failed, [], '404 and 503 are not failures')
  assert.is(new Set(lacking.asked).size, lacking.asked.length, 'a source lacking a piece is not asked for it again')
})

test('an origin that keeps serving other bytes fails the transfer (the file changed after publishing)', async () => {
  const { clock, file, m, t } = setup(5 * PIECE)
  t.add(fake(clock, file, m, 'origin', 'origin', { answer: (_i, g) => Buffer.alloc(g.length) }))
  const w = t.piece(0).catch((e: CanopyError) => e.code)
  await until(clock, () => t.state !== 'running')
  assert.is(t.state, 'failed')
  assert.is(t.error?.code, 'PIECE_INVALID')
  assert.is(await w, 'PIECE_INVALID')
})

test('with no source a transfer fails after the stall time; an origin outside its window is waiting, not stalled', async () => {
  const { clock, file, m, t } = setup(2 * PIECE)
  let open = false
  t.add(fake(clock, file, m, 'origin', 'origin', { ready: () => open }))
  await clock.advance(TRANSFER_STALL_MS * 2)
  assert.is(t.state, 'running')
  open = true
  await until(clock, () => t.state !== 'running')
  assert.is(t.state, 'done')
  const lone = setup(2 * PIECE, 2)
  await lone.clock.advance(TRANSFER_STALL_MS + 1_000)
  assert.is(lone.t.state, 'failed')
  assert.is(lone.t.error?.code, 'CONTENT_UNAVAILABLE')
})

test('a finished transfer fetches a piece again when it was evicted meanwhile', async () => {
  const { clock, file, m, t, store } = setup(3 * PIECE)
  const o = fake(clock, file, m, 'origin', 'origin')
  t.add(o)
  await until(clock, () => t.state === 'done')
  store.map.delete(m.pieces[1]!)
  const again = t.piece(1)
  assert.is(t.state, 'running')
  t.add(fake(clock, file, m, 'origin', 'origin'))
  await until(clock, () => t.state === 'done')
  await again
  assert.ok(store.has(m.pieces[1]!))
})

test('soak: random delays, failures, stalls and one liar among many peers; always complete and correct', async () => {
  const seed = testSeed('transfer soak', 7)
  for (let round = 0; round < 20; round++) {
    const r = createSeededRandom(seed * 100 + round)
    const { clock, file, m, t, events, joined } = setup(PIECE * (5 + r.int(60)) + r.int(PIECE), seed + round)
    const liar = r.int(4)
    for (let p = 0; p < 4; p++) {
      const holds = new Set([...Array(m.pieces.length).keys()].filter(() => r.float() < 0.6))
      t.add(fake(clock, file, m, `p${p}`, 'peer', {
        slots: 1 + r.int(4),
        has: (i) => holds.has(i),
        delayMs: () => 1 + r.int(200),
        answer: (i, g) => (p === liar && r.float() < 0.3 ? Buffer.from(g).fill(i & 0xff, 0, 1).fill(1, 1, 2) : r.float() < 0.05 ? new CanopyError('UPSTREAM_FAILED', 'x') : g)
      }))
    }
    const origin = fake(clock, file, m, 'origin', 'origin', { slots: 2, delayMs: () => 50 + r.int(300) })
    t.add(origin)
    await until(clock, () => t.state !== 'running', 3_600_000)
    assert.is(t.state, 'done', `round ${round}: ${t.error?.message ?? ''}`)
    assert.ok(joined().equals(file), `round ${round}: file`)
    assert.ok(events.corrupt.every((id) => id === `p${liar}`), `round ${round}: only the liar isolated`)
    assert.is(new Set(origin.asked).size, origin.asked.length, `round ${round}: no piece twice from the origin`)
  }
})

test.run()
