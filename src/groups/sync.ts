// Propagation of a node's groups over any ordered-or-not message transport
// (the peer link's channel 2 on a device, a lossy simulated net in tests):
// new records are flooded to the group's linked members with de-duplication
// (a record the store already had goes no further), and anti-entropy rounds
// compare summaries level by level (per type, then per bucket, then per key)
// so only what differs is sent. Types go in sync precedence. Messages: FORMAT.md.

import { CanopyError } from '../errors'
import type { Random } from '../hal'
import { GROUP_BATCH_BYTES_MAX, GROUP_BUCKETS, GROUP_KEYS_PER_MESSAGE_MAX, GROUP_TYPES_COUNT_MAX, RECORD_BYTES_MAX, RECORD_TYPE_BYTES_MAX } from '../limits'
import type { Logger } from '../log'
import { decodeCborAs, encodeCbor } from '../protocol/wire/cbor'
import { blob, body, bytes, optionalField, text, uint } from '../protocol/wire/schema'
import { arrayOf } from '../validate'
import { gidBytes, gidText } from './cert'
import { openRecord, type GroupRecord, type RecordMeta } from './record'
import { byPrecedence, type RecordStore } from './store'

const LIMITS = { bytesMax: GROUP_BATCH_BYTES_MAX + 1024, depthMax: 3, itemsMax: 4_096, containerCountMax: 1_024 }
const msgSpec = body({
  g: bytes(16),
  /** r records, s summary, b buckets, k keys, w want; j join, o welcome (the service's). */
  m: text(1, /^[rsbkwjo]$/),
  t: optionalField(arrayOf(text(RECORD_TYPE_BYTES_MAX), { max: GROUP_TYPES_COUNT_MAX })),
  n: optionalField(arrayOf(uint(0), { max: GROUP_TYPES_COUNT_MAX })),
  d: optionalField(blob(GROUP_KEYS_PER_MESSAGE_MAX * 24)),
  u: optionalField(blob(GROUP_BUCKETS)),
  r: optionalField(arrayOf(blob(RECORD_BYTES_MAX), { max: 1_024 }))
})
export type GroupMessage = ReturnType<typeof msgSpec.check> & { group: string }

export interface SyncOptions {
  store: RecordStore
  random: Random
  log: Logger
  /** Queue one message to a peer; false when it was dropped. */
  send: (peer: string, msg: Buffer) => boolean
  /** Linked peers that may have group g's traffic: its members (on the LAN group, every agent). */
  peers: (g: string) => string[]
  /** Join and welcome messages, for the service. */
  control?: (peer: string, m: GroupMessage) => void
  /** A round with peer found nothing to exchange. */
  synced?: (g: string, peer: string) => void
}

export class GroupSync {
  readonly counters = { messagesOut: 0, bytesOut: 0, recordsIn: 0, recordsRefused: 0, messagesRefused: 0 }

  readonly #o: SyncOptions
  constructor (o: SyncOptions) { this.#o = o }

  send (peer: string, g: string, m: Omit<GroupMessage, 'g' | 'group'>): void {
    const b = encodeCbor({ g: gidBytes(g), ...m })
    this.counters.messagesOut++
    this.counters.bytesOut += b.length
    this.#o.send(peer, b)
  }

  /** A record new here: to every linked member but the one it came from. */
  flood (r: GroupRecord, from?: string): void {
    for (const p of this.#o.peers(r.group)) if (p !== from) this.send(p, r.group, { m: 'r', r: [r.bytes] })
  }

  /** One anti-entropy round with a random linked member of g. */
  tick (g: string): void {
    const ps = this.#o.peers(g)
    if (ps.length > 0) this.summarize(g, ps[this.#o.random.int(ps.length)]!)
  }

  summarize (g: string, peer: string): void {
    const s = this.#o.store.summary(g)
    this.send(peer, g, { m: 's', t: s.map((x) => x[0]), n: s.map((x) => x[1]), d: Buffer.concat(s.map((x) => x[2])) })
  }

  /** A message from peer (decrypted). Never throws: bad input is counted and dropped. */
  async receive (peer: string, b: Buffer): Promise<void> {
    let m: GroupMessage
    try {
      const d = decodeCborAs(b, msgSpec, LIMITS, 'group message')
      m = { ...d, group: gidText(d.g) }
    } catch (err) {
      this.counters.messagesRefused++
      this.#o.log.debug('group message refused', { peer, err })
      return
    }
    const g = m.group
    const store = this.#o.store
    if (m.m === 'r') return await this.#records(peer, g, m.r ?? [])
    if (m.m === 'j' || m.m === 'o') return this.#o.control?.(peer, m)
    if (!this.#o.peers(g).includes(peer)) { this.counters.messagesRefused++; return } // summaries only between members
    const t = m.t?.[0] ?? ''
    const d = m.d ?? Buffer.alloc(0)
    if (m.m === 's') {
      const theirs = new Map((m.t ?? []).map((t, i) => [t, `${m.n?.[i] ?? 0}:${d.subarray(8 * i, 8 * i + 8).toString('hex')}`]))
      const mine = new Map(store.summary(g).map(([t, n, x]) => [t, `${n}:${x.toString('hex')}`]))
      const differ = [...new Set([...theirs.keys(), ...mine.keys()])].filter((t) => theirs.get(t) !== mine.get(t)).sort(byPrecedence)
      for (const t of differ) this.send(peer, g, { m: 'b', t: [t], d: store.buckets(g, t) })
      if (differ.length === 0) this.#o.synced?.(g, peer)
    } else if (m.m === 'b') {
      const mine = store.buckets(g, t)
      const u: number[] = []
      for (let i = 0; i < GROUP_BUCKETS; i++) if (!mine.subarray(8 * i, 8 * i + 8).equals(d.subarray(8 * i, 8 * i + 8))) u.push(i)
      const keys = store.inBuckets(g, t, new Set(u)).slice(0, GROUP_KEYS_PER_MESSAGE_MAX)
      this.send(peer, g, { m: 'k', t: [t], u: Buffer.from(u), d: Buffer.concat(keys.map((k) => Buffer.from(k.id + k.hash.slice(0, 16), 'hex'))) })
    } else if (m.m === 'k') {
      const theirs = new Map<string, string>()
      for (let i = 0; i + 24 <= d.length; i += 24) theirs.set(d.toString('hex', i, i + 16), d.toString('hex', i + 16, i + 24))
      const mine = store.inBuckets(g, t, new Set(m.u ?? []))
      const have = new Map(mine.map((x) => [x.id, x.hash.slice(0, 16)]))
      const want = [...theirs].filter(([id, h]) => have.get(id) !== h).map(([id]) => id)
      await this.sendRecords(peer, g, mine.filter((x) => theirs.get(x.id) !== x.hash.slice(0, 16)))
      if (want.length > 0) this.send(peer, g, { m: 'w', d: Buffer.from(want.join(''), 'hex') })
    } else if (m.m === 'w') {
      const metas: RecordMeta[] = []
      for (let i = 0; i + 16 <= d.length; i += 16) {
        const x = store.get(g, d.toString('hex', i, i + 16))
        if (x !== undefined) metas.push(x)
      }
      await this.sendRecords(peer, g, metas)
    }
  }

  /** Records from flash to peer, important types first, in batches that fit a frame. */
  async sendRecords (peer: string, g: string, metas: RecordMeta[]): Promise<void> {
    let batch: Buffer[] = []
    let size = 0
    for (const x of metas.sort((a, b) => byPrecedence(a.type, b.type))) {
      const r = await this.#o.store.read(x).catch(() => undefined)
      if (r === undefined) continue
      if (size + r.size > GROUP_BATCH_BYTES_MAX) { this.send(peer, g, { m: 'r', r: batch }); batch = []; size = 0 }
      batch.push(r.bytes)
      size += r.size
    }
    if (batch.length > 0) this.send(peer, g, { m: 'r', r: batch })
  }

  async #records (peer: string, g: string, list: Buffer[]): Promise<void> {
    for (const b of list) {
      try {
        const r = openRecord(b, false)
        if (r.group !== g) throw new CanopyError('RECORD_INVALID', 'wrong group')
        if (this.#o.store.get(g, r.id)?.hash === r.hash) continue // de-duplication before the signature check
        openRecord(b, true)
        this.counters.recordsIn++
        const how = await this.#o.store.apply(r, false)
        if (how === 'added' || how === 'updated') this.flood(r, peer)
      } catch (err) {
        this.counters.recordsRefused++
        this.#o.log.debug('record refused', { peer, err })
      }
    }
  }
}
