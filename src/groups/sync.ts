// Propagation of a node's groups over any ordered-or-not message transport
// (the peer link's channel 2 on a device, a lossy simulated net in tests):
// new records are flooded to the group's linked members with de-duplication
// (a record the store already had goes no further), and anti-entropy rounds
// compare summaries level by level (per type, then per bucket, then per key)
// so only what differs is sent. Types go in sync precedence. Messages: FORMAT.md.

import type { Random } from '../hal'
import { GROUP_BATCH_BYTES_MAX, GROUP_BUCKETS, GROUP_KEYS_PER_MESSAGE_MAX, GROUP_TYPES_COUNT_MAX, RECORD_BYTES_MAX, RECORD_TYPE_BYTES_MAX } from '../limits'
import type { Logger } from '../log'
import { decodeCborAs, encodeCbor } from '../protocol/wire/cbor'
import { blob, body, bytes, optionalField, text, uint } from '../protocol/wire/schema'
import { arrayOf } from '../validate'
import { gidBytes, gidText, hex } from './cert'
import { invalid, openRecord, type GroupRecord, type RecordMeta } from './record'
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

export type GroupSync = ReturnType<typeof createSync>

export function createSync (o: SyncOptions) {
  /** What was refused (the link counts frames and bytes). */
  const counters = { recordsRefused: 0, messagesRefused: 0 }
  const store = o.store
  /** A byte string as hex strings of n bytes each (a short tail dropped). */
  const split = (b: Buffer | undefined, n: number): string[] => (b ? hex(b) : '').match(new RegExp(`.{${2 * n}}`, 'g')) ?? []
  /** A KEYS entry as hex: the id and 8 bytes of the hash. */
  const entry = (x: RecordMeta): string => x.id + x.hash.slice(0, 16)
  const refused = (what: keyof typeof counters, peer: string, err?: unknown): void => { counters[what]++; o.log.debug(what, { peer, err }) }

  function send (peer: string, g: string, m: Omit<GroupMessage, 'g' | 'group'>): void {
    o.send(peer, encodeCbor({ g: gidBytes(g), ...m }))
  }

  /** A record new here: to every linked member but the one it came from. */
  function flood (r: GroupRecord, from?: string): void {
    for (const p of o.peers(r.group)) if (p !== from) send(p, r.group, { m: 'r', r: [r.bytes] })
  }

  function summarize (g: string, peer: string): void {
    const s = store.summary(g)
    send(peer, g, { m: 's', t: s.map((x) => x[0]), n: s.map((x) => x[1]), d: Buffer.concat(s.map((x) => x[2])) })
  }

  /** Records from flash to peer, important types first, in batches that fit a frame. */
  async function sendRecords (peer: string, g: string, metas: RecordMeta[]): Promise<void> {
    let batch: Buffer[] = []
    let size = 0
    for (const x of metas.sort((a, b) => byPrecedence(a.type, b.type))) {
      const r = await store.read(x).catch(() => undefined)
      if (r === undefined) continue
      if (size + r.size > GROUP_BATCH_BYTES_MAX) { send(peer, g, { m: 'r', r: batch }); batch = []; size = 0 }
      batch.push(r.bytes)
      size += r.size
    }
    if (batch.length) send(peer, g, { m: 'r', r: batch })
  }

  /** Records from peer (a REC message, or a welcome's): checked, stored, flooded on when new. */
  async function take (peer: string, g: string, rs: Buffer[], durable = false): Promise<void> {
    for (const x of rs) {
      try {
        const r = openRecord(x, false)
        if (r.group !== g) throw invalid('wrong group')
        if (store.get(g, r.id)?.hash === r.hash) continue // de-duplication before the signature check
        openRecord(x, true)
        const how = await store.apply(r, durable)
        if (how === 'added' || how === 'updated') flood(r, peer)
      } catch (err) {
        refused('recordsRefused', peer, err)
      }
    }
  }

  return {
    counters,
    take,
    send,
    flood,
    summarize,

    /** One anti-entropy round with a random linked member of g. */
    tick (g: string): void {
      const ps = o.peers(g)
      if (ps.length) summarize(g, ps[o.random.int(ps.length)]!)
    },

    /** A message from peer (decrypted). Never throws: bad input is counted and dropped. */
    async receive (peer: string, b: Buffer): Promise<void> {
      let m: GroupMessage
      try {
        const d = decodeCborAs(b, msgSpec, LIMITS, 'group message')
        m = { ...d, group: gidText(d.g) }
      } catch (err) {
        return refused('messagesRefused', peer, err)
      }
      const g = m.group
      if (m.m === 'r') return await take(peer, g, m.r ?? [])
      if ('jo'.includes(m.m)) return o.control?.(peer, m)
      if (!o.peers(g).includes(peer)) return refused('messagesRefused', peer) // summaries only between members
      const t = m.t?.[0] ?? ''
      const d = split(m.d, 8)
      if (m.m === 's') {
        // types whose count and digest differ, on either side: mine, less those that match theirs, plus theirs that do not
        const mine = new Map(store.summary(g).map(([t, n, x]) => [t, `${n}:${hex(x)}`]))
        m.t?.forEach((t, i) => { mine.get(t) === `${m.n?.[i]}:${d[i]}` ? mine.delete(t) : mine.set(t, '') })
        const differ = [...mine.keys()].sort(byPrecedence)
        for (const t of differ) send(peer, g, { m: 'b', t: [t], d: store.buckets(g, t) })
        if (differ.length === 0) o.synced?.(g, peer)
      } else if (m.m === 'b') {
        const mine = split(store.buckets(g, t), 8)
        const u = [...mine.keys()].filter((i) => mine[i] !== d[i])
        const keys = store.inBuckets(g, t, new Set(u)).slice(0, GROUP_KEYS_PER_MESSAGE_MAX)
        send(peer, g, { m: 'k', t: [t], u: Buffer.from(u), d: Buffer.from(keys.map(entry).join(''), 'hex') })
      } else if (m.m === 'k') {
        // entries are id + hash prefix: what only they have, I want; what only I have, I send
        const theirs = new Set(split(m.d, 24))
        const mine = store.inBuckets(g, t, new Set(m.u))
        const have = new Set(mine.map(entry))
        const want = [...theirs].filter((k) => !have.has(k)).map((k) => k.slice(0, 32))
        await sendRecords(peer, g, mine.filter((x) => !theirs.has(entry(x))))
        if (want.length) send(peer, g, { m: 'w', d: Buffer.from(want.join(''), 'hex') })
      } else if (m.m === 'w') {
        await sendRecords(peer, g, split(m.d, 16).flatMap((id) => store.get(g, id) ?? []))
      }
    }
  }
}
