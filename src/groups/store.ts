// The records of every group this node is in: the signed bytes on flash (a
// FlashCache of their own, named by SHA-256, bounded so it never evicts: the
// store refuses instead), an index in memory rebuilt at open, and the rules a
// record must pass. Mutations run one at a time through a bounded queue, so
// each rule sees the state the mutation before it left, and every member,
// whatever order records reach it in, keeps the same winners.

import type { Clock } from '../hal'
import { GROUP_BUCKETS, GROUP_PENDING_RECORDS_MAX } from '../limits'
import type { Logger } from '../log'
import { coded, decodeChain, LAN_GROUP, roleNames, ROLES, rolesOf, verifyChain, WRITER } from './cert'
import { encodeCbor } from '../protocol/wire/cbor'
import { beats, derivedId, invalid, metaOf, openRecord, type GroupRecord, type RecordDraft, type RecordMeta } from './record'

/** What the store needs of the flash cache (FlashCache has it). */
export interface Blobs {
  put (hash: string, bytes: Uint8Array, options?: { sync?: boolean }): Promise<void>
  get (hash: string): Promise<Buffer | undefined>
  delete (hash: string): Promise<boolean>
  hashes (): string[]
  sync? (): Promise<void>
}

export type Change = 'added' | 'updated' | 'removed'
export type Applied = Change | 'duplicate' | 'stale'

export interface StoreOptions {
  clock: Clock
  recordsMax: number
  bytesMax: number
  perMinute: number
  log: Logger
  onChange?: (meta: RecordMeta, change: Change, record?: GroupRecord) => void
}

/**
 * One group's index (short names: it never leaves the process).
 * r: records by id; t: per type, record count and the XOR of every winner's
 * hash prefix (its first 8 bytes); n: records per "author|minute of
 * creation" (the per-author rate limit, a function of the store's content);
 * m: roles of members, from their member records; v: revoked node ->
 * creation time of its revocation.
 */
export interface GroupIndex {
  r: Map<string, RecordMeta>
  t: Map<string, [n: number, x: bigint]>
  n: Map<string, number>
  m: Map<string, number>
  v: Map<string, number>
}

/** Record-type sync precedence (the seed's cRecordTypeSyncPrecedence): who may write first, then what is urgent. */
export const PRECEDENCE = ['member', 'revoke', 'location', 'presence', 'chat', 'stroke']
const rank = (t: string): number => PRECEDENCE.indexOf(t) >>> 0 // an unknown type (-1) goes last
export const byPrecedence = (a: string, b: string): number => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)
export const bucketOf = (id: string): number => (parseInt(id.slice(0, 2), 16) * GROUP_BUCKETS) >> 8
/** A record's 8-byte hash prefix, as a number to XOR. */
const prefix = (hash: string): bigint => BigInt('0x' + hash.slice(0, 16))
const gone = (m: RecordMeta, now: number): boolean => m.expires !== 0 && m.expires <= now
const minuteOf = (m: RecordMeta): string => `${m.author}|${Math.floor(m.created / 60_000)}`
/** 64-bit digests as 8 bytes each. */
export const digestBytes = (xs: bigint[]): Buffer => { const b = Buffer.alloc(8 * xs.length); xs.forEach((x, i) => b.writeBigUInt64BE(x, 8 * i)); return b }

/** GROUP_NOT_FOUND. */
export const notIn = (g: string): never => { throw coded('GROUP_NOT_FOUND', `not in group ${g}`) }

export type RecordStore = Awaited<ReturnType<typeof openStore>>

/** Rebuild the index from flash. Bytes were verified when stored and are hash-checked on read: no signature checks here. */
export async function openStore (blobs: Blobs, o: StoreOptions, keep: (group: string) => boolean) {
  const groups = new Map<string, GroupIndex>()
  let chain: Promise<unknown> = Promise.resolve()
  let pending = 0
  let count = 0
  let bytes = 0
  const all = (g: string): RecordMeta[] => [...groups.get(g)?.r.values() ?? []]

  function ensure (g: string): GroupIndex {
    let ix = groups.get(g)
    if (ix === undefined) groups.set(g, ix = { r: new Map(), t: new Map(), n: new Map(), m: new Map(), v: new Map() })
    return ix
  }

  function serial<T> (fn: () => Promise<T>): Promise<T> {
    if (pending >= GROUP_PENDING_RECORDS_MAX) return Promise.reject(coded('LIMIT_REACHED', 'store busy'))
    pending++
    const p = chain.then(fn).finally(() => { pending-- })
    chain = p.catch(() => {})
    return p
  }

  function admit (ix: GroupIndex, r: GroupRecord): void {
    const now = o.clock.wallMs()
    if (gone(r, now)) throw invalid('expired')
    if ((ix.n.get(minuteOf(r)) ?? 0) >= o.perMinute) throw coded('LIMIT_REACHED', 'records per minute')
    if (r.group === LAN_GROUP) return // every agent of the LAN may write there
    const revokedAt = ix.v.get(r.author)
    if (revokedAt !== undefined && r.created >= revokedAt) throw coded('GROUP_REVOKED', 'author revoked')
    if (r.type === 'member') { // a member's own record, carrying its certificate chain: it proves itself
      const m = r.deleted || r.id !== derivedId('member', r.author) ? null : verifyChain(decodeChain(r.payload), now / 1000)
      if (m?.g !== r.group || m.s !== r.author || m.x !== 0 || r.attributes.roles !== roleNames(m.r).join(',')) throw invalid('bad member record')
      return
    }
    const revoke = r.type === 'revoke'
    if (((ix.m.get(r.author) ?? 0) & (revoke ? ROLES.admin : WRITER)) === 0) throw coded('GROUP_FORBIDDEN', `may not write ${r.type}`)
    if (revoke && r.id !== derivedId('revoke', r.attributes.node ?? '')) throw invalid('bad revoke record')
  }

  /** Add (sign 1) or take out (-1) a record of the index. */
  function index ({ r: records, m: members, v: revoked, t: types, n: minutes }: GroupIndex, m: RecordMeta, sign: 1 | -1): void {
    const { id, type, author, hash, attributes: { node, roles = '' } } = m
    const add = sign > 0
    add ? records.set(id, metaOf(m as GroupRecord)) : records.delete(id)
    if (type === 'member') add ? m.deleted || members.set(author, rolesOf(roles.split(','))) : members.delete(author)
    if (type === 'revoke' && node !== undefined) add ? m.deleted || revoked.set(node, m.created) : revoked.delete(node)
    const d = types.get(type) ?? [0, 0n]
    d[0] += sign
    d[1] ^= prefix(hash)
    d[0] === 0 ? types.delete(type) : types.set(type, d)
    const k = minuteOf(m)
    const n = (minutes.get(k) ?? 0) + sign
    n <= 0 ? minutes.delete(k) : minutes.set(k, n)
    count += sign
    bytes += sign * m.size
  }

  /** A blob left behind (a failed delete) is found again at open, and loses to its replacement there. */
  const drop = (hash: string): Promise<unknown> => blobs.delete(hash).catch((err: unknown) => { o.log.warn('blob not deleted', { hash, err }) })

  async function remove (ix: GroupIndex, m: RecordMeta): Promise<void> {
    index(ix, m, -1)
    await drop(m.hash)
    o.onChange?.(m, 'removed')
  }

  const hashes = blobs.hashes()
  for (let i = 0; i < hashes.length; i += 64) { // reads in parallel, 64 at a time; the index is built in order
    const got = await Promise.all(hashes.slice(i, i + 64).map((h) => blobs.get(h).then((b) => openRecord(b!, false)).catch(() => null)))
    for (const [j, r] of got.entries()) {
      if (r === null || !keep(r.group)) { await blobs.delete(hashes[i + j]!); continue }
      const ix = ensure(r.group)
      const old = ix.r.get(r.id)
      if (old !== undefined) { // both copies of an update survived a power cut: keep the winner
        const loser = beats(r, old) ? old : r
        await blobs.delete(loser.hash)
        if (loser === r) continue
        index(ix, old, -1)
      }
      index(ix, r, 1)
    }
  }

  return {
    get count () { return count },
    get bytes () { return bytes },
    ensure,
    group: (g: string): GroupIndex | undefined => groups.get(g),
    get: (g: string, id: string): RecordMeta | undefined => groups.get(g)?.r.get(id),

    /**
     * Store a record if it wins over the one of its id and passes the group's
     * rules (throws RECORD_INVALID, GROUP_FORBIDDEN, GROUP_REVOKED,
     * GROUP_STORE_FULL, LIMIT_REACHED). `durable`: resolve only once on flash.
     */
    apply: (r: GroupRecord, durable = true): Promise<Applied> => serial(async () => {
      const ix = groups.get(r.group)
      if (ix === undefined) return notIn(r.group)
      const old = ix.r.get(r.id)
      if (old?.hash === r.hash) return 'duplicate'
      if (old !== undefined && !beats(r, old)) return 'stale'
      admit(ix, r)
      if ((old === undefined && count >= o.recordsMax) || bytes - (old?.size ?? 0) + r.size > o.bytesMax) throw coded('GROUP_STORE_FULL', 'store full')
      await blobs.put(r.hash, r.bytes, { sync: durable })
      if (old !== undefined) { index(ix, old, -1); await drop(old.hash) }
      index(ix, r, 1)
      const how = old === undefined ? 'added' : 'updated'
      o.onChange?.(metaOf(r), how, r)
      // A revocation takes effect from its creation on: the revoked author's later records go, on every member alike.
      if (r.type === 'revoke' && !r.deleted && r.group !== LAN_GROUP) {
        for (const m of [...ix.r.values()]) if (m.author === r.attributes.node && m.created >= r.created) await remove(ix, m)
      }
      return how
    }),

    /** Drop records past their expiry (tombstones included); then make records taken without a sync durable. */
    purge: (): Promise<void> => serial(async () => {
      const now = o.clock.wallMs()
      for (const ix of groups.values()) for (const m of [...ix.r.values()]) if (gone(m, now)) await remove(ix, m)
      await blobs.sync?.()
    }),

    /** The whole record (payload included) from flash. */
    read: async (m: RecordMeta): Promise<GroupRecord | undefined> => { const b = await blobs.get(m.hash); return b && openRecord(b, false) },

    /** Records of a group, oldest first; by type, by attributes (all must match), tombstones only when asked. */
    list: (g: string, q: { type?: string, attributes?: Record<string, string>, deleted?: boolean, limit?: number } = {}): RecordMeta[] =>
      all(g).filter((m) => (q.type === undefined || m.type === q.type) && (!m.deleted || !!q.deleted) && Object.entries(q.attributes ?? {}).every(([k, v]) => m.attributes[k] === v))
        .sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1)).slice(0, q.limit),

    /** Anti-entropy level 1: per type, in sync precedence, [type, count, XOR of hash prefixes (8 bytes)]. */
    summary: (g: string): Array<[string, number, Buffer]> =>
      [...groups.get(g)?.t ?? []].sort((x, y) => byPrecedence(x[0], y[0])).map(([t, [n, x]]) => [t, n, digestBytes([x])]),

    /** Level 2: one type's digest per bucket (GROUP_BUCKETS × 8 bytes). */
    buckets (g: string, type: string): Buffer {
      const acc = new Array<bigint>(GROUP_BUCKETS).fill(0n)
      for (const m of all(g)) if (m.type === type) acc[bucketOf(m.id)] ^= prefix(m.hash)
      return digestBytes(acc)
    },

    /** Level 3: the records of one type in these buckets. */
    inBuckets: (g: string, type: string, buckets: ReadonlySet<number>): RecordMeta[] => all(g).filter((m) => m.type === type && buckets.has(bucketOf(m.id)))
  }
}

/** My own member record for a group: my certificate chain, my roles, where my link listens. */
export function memberDraft (chain: Buffer[], version: number, created: number, addr?: string): RecordDraft {
  const m = verifyChain(chain, 0)
  return {
    group: m.g, id: derivedId('member', m.s), type: 'member', version, created, expires: 0, deleted: false,
    attributes: { roles: roleNames(m.r).join(','), ...(addr !== undefined ? { addr } : {}) }, payload: encodeCbor(chain)
  }
}
