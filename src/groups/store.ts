// The records of every group this node is in: the signed bytes on flash (a
// FlashCache of their own, named by SHA-256, bounded so it never evicts: the
// store refuses instead), an index in memory rebuilt at open, and the rules a
// record must pass. Mutations run one at a time through a bounded queue, so
// each rule sees the state the mutation before it left, and every member,
// whatever order records reach it in, keeps the same winners.

import { CanopyError } from '../errors'
import type { Clock } from '../hal'
import { GROUP_BUCKETS, GROUP_PENDING_RECORDS_MAX } from '../limits'
import type { Logger } from '../log'
import { decodeChain, LAN_GROUP, roleNames, ROLES, rolesOf, verifyChain, WRITER } from './cert'
import { encodeCbor } from '../protocol/wire/cbor'
import { beats, derivedId, metaOf, openRecord, type GroupRecord, type RecordDraft, type RecordMeta } from './record'

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

/** Per type: record count and the XOR of every winner's hash prefix (two 32-bit halves), kept as records come and go. */
interface Digest { n: number, a: number, b: number }

export class GroupIndex {
  readonly records = new Map<string, RecordMeta>()
  readonly types = new Map<string, Digest>()
  /** Records per "author|minute of creation": the per-author rate limit, a function of the store's content. */
  readonly minutes = new Map<string, number>()
  /** Roles of members, from their member records. */
  readonly members = new Map<string, number>()
  /** Revoked node -> creation time of its revocation. */
  readonly revoked = new Map<string, number>()
}

/** Record-type sync precedence (the seed's cRecordTypeSyncPrecedence): who may write first, then what is urgent. */
export const PRECEDENCE = ['member', 'revoke', 'location', 'presence', 'chat', 'stroke']
const rank = (t: string): number => { const i = PRECEDENCE.indexOf(t); return i < 0 ? PRECEDENCE.length : i }
export const byPrecedence = (a: string, b: string): number => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)
export const bucketOf = (id: string): number => (parseInt(id.slice(0, 2), 16) * GROUP_BUCKETS) >> 8
const half = (hash: string, i: number): number => parseInt(hash.slice(i, i + 8), 16)

export class RecordStore {
  count = 0
  bytes = 0
  readonly #groups = new Map<string, GroupIndex>()
  #chain: Promise<unknown> = Promise.resolve()
  #pending = 0
  readonly #blobs: Blobs
  readonly #o: StoreOptions

  private constructor (blobs: Blobs, o: StoreOptions) { this.#blobs = blobs; this.#o = o }

  /** Rebuild the index from flash. Bytes were verified when stored and are hash-checked on read: no signature checks here. */
  static async open (blobs: Blobs, o: StoreOptions, keep: (group: string) => boolean): Promise<RecordStore> {
    const s = new RecordStore(blobs, o)
    const hashes = blobs.hashes()
    for (let i = 0; i < hashes.length; i += 64) { // reads in parallel, 64 at a time; the index is built in order
      const got = await Promise.all(hashes.slice(i, i + 64).map((h) => blobs.get(h).catch(() => undefined)))
      for (const [j, bytes] of got.entries()) {
        let r: GroupRecord | null = null
        try { if (bytes !== undefined) r = openRecord(bytes, false) } catch { /* not a record: dropped below */ }
        if (r === null || !keep(r.group)) { await blobs.delete(hashes[i + j]!); continue }
        const ix = s.ensure(r.group)
        const old = ix.records.get(r.id)
        if (old !== undefined) { // both copies of an update survived a power cut: keep the winner
          const loser = beats(r, old) ? old : r
          await blobs.delete(loser.hash)
          if (loser === r) continue
          s.#unindex(ix, old)
        }
        s.#index(ix, r)
      }
    }
    return s
  }

  ensure (group: string): GroupIndex {
    let ix = this.#groups.get(group)
    if (ix === undefined) this.#groups.set(group, ix = new GroupIndex())
    return ix
  }

  group (group: string): GroupIndex | undefined { return this.#groups.get(group) }

  /**
   * Store a record if it wins over the one of its id and passes the group's
   * rules (throws RECORD_INVALID, GROUP_FORBIDDEN, GROUP_REVOKED,
   * GROUP_STORE_FULL, LIMIT_REACHED). `durable`: resolve only once on flash.
   */
  apply (r: GroupRecord, durable = true): Promise<Applied> {
    return this.#serial(async () => {
      const ix = this.#groups.get(r.group)
      if (ix === undefined) throw new CanopyError('GROUP_NOT_FOUND', `not in group ${r.group}`)
      const old = ix.records.get(r.id)
      if (old !== undefined && (old.hash === r.hash || !beats(r, old))) return old.hash === r.hash ? 'duplicate' : 'stale'
      this.#admit(ix, r)
      if ((old === undefined && this.count >= this.#o.recordsMax) || this.bytes - (old?.size ?? 0) + r.size > this.#o.bytesMax) {
        throw new CanopyError('GROUP_STORE_FULL', `store full: ${this.count} records, ${this.bytes} bytes`)
      }
      await this.#blobs.put(r.hash, r.bytes, { sync: durable })
      if (old !== undefined) { this.#unindex(ix, old); await this.#deleteBlob(old.hash) }
      this.#index(ix, r)
      this.#o.onChange?.(metaOf(r), old === undefined ? 'added' : 'updated', r)
      // A revocation takes effect from its creation on: the revoked author's later records go, on every member alike.
      if (r.type === 'revoke' && !r.deleted && r.group !== LAN_GROUP) {
        for (const m of [...ix.records.values()]) if (m.author === r.attributes.node && m.created >= r.created) await this.#remove(ix, m)
      }
      return old === undefined ? 'added' : 'updated'
    })
  }

  /** Drop records past their expiry (tombstones included); then make records taken without a sync durable. */
  purge (): Promise<void> {
    return this.#serial(async () => {
      const now = this.#o.clock.wallMs()
      for (const ix of this.#groups.values()) {
        for (const m of [...ix.records.values()]) if (m.expires !== 0 && m.expires <= now) await this.#remove(ix, m)
      }
      await this.#blobs.sync?.()
    })
  }

  get (group: string, id: string): RecordMeta | undefined { return this.#groups.get(group)?.records.get(id) }

  /** The whole record (payload included) from flash. */
  async read (m: RecordMeta): Promise<GroupRecord | undefined> {
    const bytes = await this.#blobs.get(m.hash)
    return bytes === undefined ? undefined : openRecord(bytes, false)
  }

  /** Records of a group, oldest first; by type, by attributes (all must match), tombstones only when asked. */
  list (group: string, q: { type?: string, attributes?: Record<string, string>, deleted?: boolean, limit?: number } = {}): RecordMeta[] {
    const out: RecordMeta[] = []
    for (const m of this.#groups.get(group)?.records.values() ?? []) {
      if ((q.type !== undefined && m.type !== q.type) || (m.deleted && q.deleted !== true)) continue
      if (q.attributes !== undefined && Object.entries(q.attributes).some(([k, v]) => m.attributes[k] !== v)) continue
      out.push(m)
    }
    return out.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1)).slice(0, q.limit)
  }

  /** Anti-entropy level 1: per type, in sync precedence, [type, count, XOR of hash prefixes (8 bytes)]. */
  summary (group: string): Array<[string, number, Buffer]> {
    const ix = this.#groups.get(group)
    if (ix === undefined) return []
    return [...ix.types.entries()].sort((x, y) => byPrecedence(x[0], y[0])).map(([t, d]) => [t, d.n, digestBytes(d.a, d.b)])
  }

  /** Level 2: one type's digest per bucket (GROUP_BUCKETS × 8 bytes). */
  buckets (group: string, type: string): Buffer {
    const acc = new Uint32Array(2 * GROUP_BUCKETS)
    for (const m of this.#groups.get(group)?.records.values() ?? []) {
      if (m.type !== type) continue
      const i = 2 * bucketOf(m.id)
      acc[i] ^= half(m.hash, 0)
      acc[i + 1] ^= half(m.hash, 8)
    }
    const out = Buffer.alloc(8 * GROUP_BUCKETS)
    for (let i = 0; i < acc.length; i++) out.writeUInt32BE(acc[i]!, 4 * i)
    return out
  }

  /** Level 3: the records of one type in these buckets. */
  inBuckets (group: string, type: string, buckets: ReadonlySet<number>): RecordMeta[] {
    return [...this.#groups.get(group)?.records.values() ?? []].filter((m) => m.type === type && buckets.has(bucketOf(m.id)))
  }

  #serial<T> (fn: () => Promise<T>): Promise<T> {
    if (this.#pending >= GROUP_PENDING_RECORDS_MAX) return Promise.reject(new CanopyError('LIMIT_REACHED', 'record store busy'))
    this.#pending++
    const p = this.#chain.then(fn).finally(() => { this.#pending-- })
    this.#chain = p.catch(() => {})
    return p
  }

  #admit (ix: GroupIndex, r: GroupRecord): void {
    const now = this.#o.clock.wallMs()
    const invalid = (m: string): CanopyError => new CanopyError('RECORD_INVALID', m)
    if (r.expires !== 0 && r.expires <= now) throw invalid('expired')
    if ((ix.minutes.get(`${r.author}|${Math.floor(r.created / 60_000)}`) ?? 0) >= this.#o.perMinute) {
      throw new CanopyError('LIMIT_REACHED', `${r.author}: too many records per minute`)
    }
    if (r.group === LAN_GROUP) return // every agent of the LAN may write there
    const revokedAt = ix.revoked.get(r.author)
    if (revokedAt !== undefined && r.created >= revokedAt) throw new CanopyError('GROUP_REVOKED', `${r.author} is revoked`)
    if (r.type === 'member') { // a member's own record, carrying its certificate chain: it proves itself
      if (r.deleted || r.id !== derivedId('member', r.author)) throw invalid('bad member record')
      const m = verifyChain(decodeChain(r.payload), now / 1000)
      if (m.group !== r.group || m.node !== r.author || m.x !== 0 || r.attributes.roles !== roleNames(m.roles).join(',')) throw invalid('member record and certificate differ')
      return
    }
    const need = r.type === 'revoke' ? ROLES.admin : WRITER
    if (((ix.members.get(r.author) ?? 0) & need) === 0) throw new CanopyError('GROUP_FORBIDDEN', `${r.author} may not write ${r.type}`)
    if (r.type === 'revoke' && r.id !== derivedId('revoke', r.attributes.node ?? '')) throw invalid('bad revoke record')
  }

  #index (ix: GroupIndex, r: RecordMeta): void {
    ix.records.set(r.id, metaOf(r as GroupRecord))
    this.#account(ix, r, 1)
    if (r.type === 'member' && !r.deleted) ix.members.set(r.author, rolesOf((r.attributes.roles ?? '').split(',')))
    if (r.type === 'revoke' && !r.deleted && r.attributes.node !== undefined) ix.revoked.set(r.attributes.node, r.created)
  }

  #unindex (ix: GroupIndex, m: RecordMeta): void {
    ix.records.delete(m.id)
    this.#account(ix, m, -1)
    if (m.type === 'member') ix.members.delete(m.author)
    if (m.type === 'revoke' && m.attributes.node !== undefined) ix.revoked.delete(m.attributes.node)
  }

  #account (ix: GroupIndex, m: RecordMeta, sign: 1 | -1): void {
    const d = ix.types.get(m.type) ?? { n: 0, a: 0, b: 0 }
    d.n += sign
    d.a = (d.a ^ half(m.hash, 0)) >>> 0
    d.b = (d.b ^ half(m.hash, 8)) >>> 0
    if (d.n === 0) ix.types.delete(m.type)
    else ix.types.set(m.type, d)
    const minute = `${m.author}|${Math.floor(m.created / 60_000)}`
    const n = (ix.minutes.get(minute) ?? 0) + sign
    if (n <= 0) ix.minutes.delete(minute)
    else ix.minutes.set(minute, n)
    this.count += sign
    this.bytes += sign * m.size
  }

  async #remove (ix: GroupIndex, m: RecordMeta): Promise<void> {
    this.#unindex(ix, m)
    await this.#deleteBlob(m.hash)
    this.#o.onChange?.(m, 'removed')
  }

  /** A blob left behind (a failed delete) is found again at open, and loses to its replacement there. */
  async #deleteBlob (hash: string): Promise<void> {
    try { await this.#blobs.delete(hash) } catch (err) { this.#o.log.warn('record blob not deleted', { hash, err }) }
  }
}

export function digestBytes (a: number, b: number): Buffer {
  const out = Buffer.alloc(8)
  out.writeUInt32BE(a, 0)
  out.writeUInt32BE(b, 4)
  return out
}

/** My own member record for a group: my certificate chain, my roles, where my link listens. */
export function memberDraft (chain: Buffer[], version: number, created: number, addr?: string): RecordDraft {
  const m = verifyChain(chain, 0)
  return {
    group: m.group, id: derivedId('member', m.node), type: 'member', version, created, expires: 0, deleted: false,
    attributes: { roles: roleNames(m.roles).join(','), ...(addr !== undefined ? { addr } : {}) }, payload: encodeCbor(chain)
  }
}
