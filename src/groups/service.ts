// Groups as an agent service: memberships (and owned root keys) in
// <dataDir>/groups.json, records on their own flash area, propagation on the
// peer link's channel 2 sealed per link (crypt.ts), each group's members
// linked as a sparse graph (a few neighbours each), the LAN's default group
// formed by every agent on the LAN. The HTTP API and events: api.ts.

import { isUtf8 } from 'node:buffer'
import { join } from 'node:path'
import type { Service } from '../agent/service'
import type { Config } from '../config'
import { CanopyError } from '../errors'
import { TimerGroup, type Hal } from '../hal'
import type { PageSection } from '../http'
import type { Identity } from '../identity'
import { GROUP_DIALS_PER_ROUND_MAX, GROUP_FILE_BYTES_MAX, GROUP_JOIN_MS, GROUP_PURGE_MS, GROUPS_COUNT_MAX, RECORD_BYTES_MAX } from '../limits'
import type { Logger } from '../log'
import type { PeerDirectory } from '../protocol'
import { framePayload, LINK_PORT_DEFAULT, type Link, type LinkHost } from '../protocol/link'
import { encodeCbor } from '../protocol/wire/cbor'
import { boundBytesMax, FlashCache } from '../flash-cache/store'
import { decodeChain, formatInvitation, issue, LAN_GROUP, newGroup, openCert, parseInvitation, roleNames, verifyChain } from './cert'
import type { KeyShares, Session } from './crypt'
import { derivedId, metaOf, openRecord, signRecord, type GroupRecord, type RecordDraft, type RecordMeta } from './record'
import { memberDraft, RecordStore, type Change } from './store'
import { GroupSync, type GroupMessage } from './sync'

interface Entry { name: string, chain: Buffer[], root?: Buffer }
export type GroupEvent = { group: string, type: 'record' | 'member' | 'sync' | 'status', data: unknown }
export interface Write { id?: string, type: string, attributes?: Record<string, string>, payload?: Buffer, expiresMs?: number, deleted?: boolean }

export interface GroupsOptions {
  hal: Hal
  config: Config
  identity: Identity
  log: Logger
  links: LinkHost
  shares: KeyShares
  peers: PeerDirectory
  /** Is this address on the LAN (the HTTP port's policy)? The LAN group's traffic goes nowhere else. */
  lan: (remote: string) => boolean
}

const FILE = 'groups.json'
const IO_UNIT_BYTES = 16

export class GroupsService implements Service {
  readonly name = 'groups'
  store: RecordStore | null = null
  error: string | null = null
  sync!: GroupSync
  readonly entries = new Map<string, Entry>()
  readonly listeners = new Set<(e: GroupEvent) => void>()
  readonly #sessions = new WeakMap<Link, Session>()
  readonly #joins = new Map<string, (m: GroupMessage) => void>()
  readonly #timers: TimerGroup
  #flash: FlashCache | null = null
  readonly #c: Config['groups']
  readonly #h: Hal
  readonly #id: Identity
  readonly #log: Logger
  readonly #links: LinkHost

  constructor (readonly o: GroupsOptions) {
    this.#c = o.config.groups
    this.#h = o.hal
    this.#id = o.identity
    this.#log = o.log
    this.#links = o.links
    this.#timers = new TimerGroup(o.hal.clock)
    o.links.on('group', (l, f) => {
      if (this.store === null) return
      const p = this.#session(l)?.open(framePayload(f))
      if (p == null) { l.close('protocol'); return }
      void this.sync.receive(l.nodeId, p)
    })
    o.links.onOpen((l) => { if (l.serves('group')) this.#status(l, true) })
    o.links.onClosed((l) => { this.#status(l, false) })
  }

  get me (): string { return this.#id.nodeId }

  async start (): Promise<void> {
    if (!this.#c.enabled) return
    const hal = this.#h
    const file = await hal.files.read(join(hal.dataDir, FILE), GROUP_FILE_BYTES_MAX)
    if (file !== null) {
      try {
        for (const [g, e] of Object.entries(JSON.parse(file.toString()) as Record<string, { name: string, chain: string[], root?: string }>)) {
          this.entries.set(g, { name: e.name, chain: e.chain.map((c) => Buffer.from(c, 'base64')), root: e.root === undefined ? undefined : Buffer.from(e.root, 'base64') })
        }
      } catch (err) {
        this.#log.error(`${FILE} damaged`, { err })
      }
    }
    const c = this.#c
    const bytesMax = boundBytesMax(c.blockBytes, c.blockCount, IO_UNIT_BYTES)
    let store: RecordStore
    try { // like the cache: a records area that cannot be opened is reported, and the agent runs without groups
      const flash = await hal.openFlash('records', { readBytes: IO_UNIT_BYTES, programBytes: IO_UNIT_BYTES, blockBytes: c.blockBytes, blockCount: c.blockCount })
      this.#flash = await FlashCache.open(flash, { clock: hal.clock, bytesMax, piecesMax: c.recordsMax + 1, writeBudgetBytesPerDay: this.o.config.cache.writeBudgetBytesPerDay, log: this.#log })
      store = await RecordStore.open(this.#flash, {
        clock: hal.clock, recordsMax: c.recordsMax, bytesMax: bytesMax - RECORD_BYTES_MAX, perMinute: c.recordsPerAuthorPerMinute, log: this.#log,
        onChange: (m, ch, r) => { this.#changed(m, ch, r) }
      }, (g) => this.entries.has(g) || (g === LAN_GROUP && c.lan))
    } catch (err) {
      this.error = CanopyError.from(err, 'FLASH_IO').message
      this.#log.error('record store unavailable; running without groups', { err })
      return
    }
    this.store = store
    this.sync = new GroupSync({
      store,
      random: hal.random,
      log: this.#log,
      send: (p, m) => this.#send(p, m),
      peers: (g) => this.peers(g),
      control: (p, m) => { void this.#control(p, m) },
      synced: (g, peer) => { this.#emit(g, 'sync', { peer }) }
    })
    if (c.lan) store.ensure(LAN_GROUP)
    for (const g of this.entries.keys()) store.ensure(g)
    this.#timers.setInterval(() => { this.#round() }, c.syncIntervalMs)
    this.#timers.setInterval(() => { void store.purge().catch((err: unknown) => { this.#log.warn('purge failed', { err }) }) }, GROUP_PURGE_MS)
  }

  async ready (): Promise<void> {
    if (this.store === null) return
    // my member records carry the link address, which is known now
    for (const g of this.entries.keys()) await this.#announce(g).catch((err: unknown) => { this.#log.warn('announce failed', { group: g, err }) })
    this.#round()
  }

  async stop (): Promise<void> {
    this.#timers.clearAll()
    // LinkHost.stop awaits server.close() before closing links, and that waits for accepted links to end: close them first.
    for (const l of this.#links.list()) l.close('shutdown')
    if (this.store === null) return
    await this.store?.purge().catch(() => {})
    await this.#flash?.close()
  }

  /** Linked peers that may have g's traffic: its members (not revoked); on the LAN group, every linked agent. */
  peers (g: string): string[] {
    const ls = this.#links.list().filter((l) => l.open && l.serves('group'))
    if (g === LAN_GROUP) return this.#c.lan ? ls.filter((l) => this.o.lan(l.remoteAddress)).map((l) => l.nodeId) : []
    const ix = this.store?.group(g)
    return ix === undefined ? [] : ls.filter((l) => ix.members.has(l.nodeId) && !ix.revoked.has(l.nodeId)).map((l) => l.nodeId)
  }

  groups (): string[] { return [...(this.store !== null && this.#c.lan ? [LAN_GROUP] : []), ...this.entries.keys()] }

  /** A group I am in (GROUP_NOT_FOUND otherwise). */
  check (g: string): RecordStore {
    if (this.store === null || this.store.group(g) === undefined) throw new CanopyError('GROUP_NOT_FOUND', `not in group ${g}`)
    return this.store
  }

  async create (name: string): Promise<string> {
    if (this.entries.size >= GROUPS_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', 'too many groups')
    const root = this.#h.random.bytes(32)
    const { group, chain } = newGroup(name, this.#id, root)
    await this.#enter(group, { name, chain, root })
    return group
  }

  invite (g: string, forNode: string, roles: number, expiresMs: number): string {
    const e = this.#entry(g)
    const x = Math.ceil((this.#h.clock.wallMs() + expiresMs) / 1000)
    return formatInvitation(issue(e.chain, this.#id, { g, s: forNode, r: roles, x, n: e.name, a: `${this.me}@${this.contact()}` }))
  }

  /** Join with an invitation: dial the inviter, present it, take the membership it signs, then sync in full from it. */
  async join (text: string): Promise<string> {
    const m = parseInvitation(text, this.#h.clock.wallMs() / 1000)
    if (m.node !== this.me) throw new CanopyError('GROUP_INVITATION_FOREIGN', `the invitation is for node ${m.node}`)
    if (this.entries.has(m.group)) return m.group
    const [, inviter, host, port] = /^([0-9a-f]{32})@(.+):(\d+)$/.exec(m.contact ?? '') ?? []
    if (inviter === undefined) throw new CanopyError('GROUP_INVITATION_INVALID', 'no inviter address')
    await this.#links.connect(host!.replace(/^\[|\]$/g, ''), Number(port), inviter)
    const welcome = new Promise<GroupMessage>((resolve, reject) => {
      const t = this.#timers.setTimeout(() => { this.#joins.delete(m.group); reject(new CanopyError('TIMEOUT', 'the inviter did not answer')) }, GROUP_JOIN_MS)
      this.#joins.set(m.group, (w) => { t.cancel(); this.#joins.delete(m.group); resolve(w) })
    })
    this.sync.send(inviter, m.group, { m: 'j', d: encodeCbor(m.chain) })
    const w = await welcome
    if (w.d === undefined) throw new CanopyError((w.t?.[0] ?? 'GROUP_INVITATION_INVALID') as 'GROUP_INVITATION_INVALID', w.t?.[1] ?? 'refused')
    const chain = decodeChain(w.d)
    const v = verifyChain(chain, this.#h.clock.wallMs() / 1000)
    if (v.group !== m.group || v.node !== this.me || v.x !== 0) throw new CanopyError('GROUP_INVITATION_INVALID', 'bad welcome')
    await this.#enter(m.group, { name: m.name, chain }, w.r ?? [])
    this.sync.summarize(m.group, inviter)
    return m.group
  }

  /** Add, update or delete (a tombstone) a record as this node; flooded to the group. */
  async write (g: string, w: Write): Promise<GroupRecord> {
    const store = this.check(g)
    const id = w.id ?? this.#h.random.bytes(16).toString('hex')
    const old = store.get(g, id)
    const now = this.#h.clock.wallMs()
    return await this.#put({
      group: g, id, type: w.type, version: (old?.version ?? 0) + 1, created: now, deleted: w.deleted === true,
      expires: w.deleted === true ? now + this.#c.tombstoneMs : w.expiresMs !== undefined ? now + w.expiresMs : 0,
      attributes: w.attributes ?? {}, payload: w.payload ?? Buffer.alloc(0)
    })
  }

  /** Sign as this node, store, flood. */
  async #put (d: RecordDraft): Promise<GroupRecord> {
    const r = signRecord(d, this.#id.publicKey, this.#id.privateKey)
    await this.store!.apply(r)
    this.sync.flood(r)
    return r
  }

  async remove (g: string, id: string): Promise<void> {
    const old = this.check(g).get(g, id)
    if (old === undefined || old.deleted) throw new CanopyError('RECORD_NOT_FOUND', `no record ${id}`)
    await this.write(g, { id, type: old.type, attributes: old.attributes, deleted: true })
  }

  revoke (g: string, node: string): Promise<GroupRecord> {
    return this.write(g, { id: derivedId('revoke', node), type: 'revoke', attributes: { node } })
  }

  /** host:port where my link listens, as others should dial it. */
  contact (): string {
    const { link, http } = this.o.config
    let host = link.host ?? http.host
    if (host === '0.0.0.0' || host === '::') host = this.#h.nics.list().find((n) => n.role === 'lan' && n.up)?.addresses.find((a) => a.family === 4)?.address ?? '127.0.0.1'
    return `${host.includes(':') ? `[${host}]` : host}:${this.#links.listenPort}`
  }

  status (): unknown {
    return this.store === null ? { error: this.error } : { groups: this.groups().map((g) => this.describe(g)), records: this.store.count, bytes: this.store.bytes, counters: this.sync.counters }
  }

  describe (g: string): Record<string, unknown> {
    const ix = this.store?.group(g)
    const e = this.entries.get(g)
    return { id: g, name: e?.name ?? 'LAN', roles: roleNames(ix?.members.get(this.me) ?? 2), members: g === LAN_GROUP ? this.peers(g).length + 1 : ix?.members.size, records: ix?.records.size, linked: this.peers(g) }
  }

  page (): PageSection | null {
    return this.store === null ? null : { title: 'groups', html: this.groups().map((g) => `<a href="/groups/${g}">${g === LAN_GROUP ? 'LAN' : g}</a> `).join('') }
  }

  // ---- inside --------------------------------------------------------------------

  #entry (g: string): Entry {
    const e = this.entries.get(g)
    if (e === undefined) throw new CanopyError('GROUP_NOT_FOUND', `not in group ${g} (or it is the LAN's)`)
    return e
  }

  async #enter (g: string, e: Entry, welcome: Buffer[] = []): Promise<void> {
    this.entries.set(g, e)
    await this.#save()
    const store = this.store!
    store.ensure(g)
    for (const b of welcome) {
      try {
        const r = openRecord(b, true)
        if (r.group === g) await store.apply(r)
      } catch (err) { this.#log.debug('welcome record refused', { err }) }
    }
    await this.#announce(g)
  }

  /** My member record, written again when my address changed. */
  async #announce (g: string): Promise<void> {
    const store = this.check(g)
    const e = this.#entry(g)
    const old = store.get(g, derivedId('member', this.me))
    if (old !== undefined && old.attributes.addr === this.contact()) return
    await this.#put(memberDraft(e.chain, (old?.version ?? 0) + 1, this.#h.clock.wallMs(), this.contact()))
  }

  async #save (): Promise<void> {
    const out: Record<string, unknown> = {}
    for (const [g, e] of this.entries) out[g] = { name: e.name, chain: e.chain.map((c) => c.toString('base64')), root: e.root?.toString('base64') }
    await this.#h.files.writeAtomic(join(this.#h.dataDir, FILE), Buffer.from(JSON.stringify(out)), 0o600)
  }

  /** Join requests (as inviter) and welcomes (as joiner). */
  async #control (peer: string, m: GroupMessage): Promise<void> {
    if (m.m === 'o') { this.#joins.get(m.group)?.(m); return }
    const g = m.group
    const refuse = (err: unknown): void => {
      const e = CanopyError.from(err, 'GROUP_INVITATION_INVALID')
      this.sync.send(peer, g, { m: 'o', t: [e.code, e.message] })
    }
    try {
      const e = this.#entry(g)
      const store = this.check(g)
      const now = this.#h.clock.wallMs() / 1000
      const v = verifyChain(decodeChain(m.d ?? Buffer.alloc(0)), now, (n) => store.group(g)!.revoked.has(n))
      const leaf = openCert(v.chain[v.chain.length - 1]!)
      if (v.group !== g || v.node !== peer || v.contact === undefined) throw new CanopyError('GROUP_INVITATION_FOREIGN', 'not for this node or group')
      if (v.x <= now) throw new CanopyError('GROUP_INVITATION_EXPIRED', 'expired')
      if (leaf.k.compare(this.#id.publicKey) !== 0) throw new CanopyError('GROUP_INVITATION_FOREIGN', 'issued by another member')
      const chain = issue(e.chain, this.#id, { g, s: peer, r: v.roles, x: 0, n: e.name })
      const mine = store.get(g, derivedId('member', this.me))
      const r = mine === undefined ? undefined : await store.read(mine)
      this.sync.send(peer, g, { m: 'o', d: encodeCbor(chain), r: r === undefined ? [] : [r.bytes] })
      this.#emit(g, 'member', { node: peer, joined: true })
    } catch (err) {
      refuse(err)
    }
  }

  /** Keep each group's neighbours linked; one anti-entropy round per group. */
  #round (): void {
    for (const g of this.groups()) {
      const linked = new Set(this.peers(g))
      if (linked.size < this.#c.neighbours) {
        const cand: Array<[string, string, number]> = []
        if (g === LAN_GROUP) {
          for (const p of this.o.peers.list()) cand.push([p.nodeId, p.address, p.linkPort ?? LINK_PORT_DEFAULT])
        } else {
          for (const m of this.store!.list(g, { type: 'member' })) {
            const a = /^\[?([^\]]+)\]?:(\d+)$/.exec(m.attributes.addr ?? '')
            if (a !== null && m.author !== this.me && this.store!.group(g)!.revoked.get(m.author) === undefined) cand.push([m.author, a[1]!, Number(a[2])])
          }
        }
        const todo = cand.filter(([n]) => !linked.has(n) && n !== this.me)
        for (let i = 0; i < GROUP_DIALS_PER_ROUND_MAX && todo.length > 0; i++) {
          const [n, host, port] = todo.splice(this.#h.random.int(todo.length), 1)[0]!
          this.#links.connect(host, port, n).catch((err: unknown) => { this.#log.debug('unreachable', { node: n, err }) })
        }
      }
      this.sync.tick(g)
    }
  }

  #session (l: Link): Session | null {
    let s = this.#sessions.get(l)
    if (s === undefined) {
      const made = this.o.shares.session(l.extension, l.peerExtension, l.initiator)
      if (made === null) return null
      this.#sessions.set(l, s = made)
    }
    return s
  }

  #send (peer: string, m: Buffer): boolean {
    const l = this.#links.get(peer)
    if (l === undefined || !l.open || !l.serves('group')) return false
    const c = this.#session(l)?.seal(m)
    if (c == null) { l.close('protocol'); return false }
    return l.send('group', c)
  }

  #status (l: Link, up: boolean): void {
    for (const g of this.groups()) {
      if (g === LAN_GROUP || this.store?.group(g)?.members.has(l.nodeId) === true) {
        this.#emit(g, 'status', { node: l.nodeId, linked: up })
        if (up && l.initiator) this.sync.summarize(g, l.nodeId)
      }
    }
  }

  #changed (m: RecordMeta, change: Change, r?: GroupRecord): void {
    this.#emit(m.group, m.type === 'member' ? 'member' : 'record', { change, record: recordJson(m, r) })
  }

  #emit (group: string, type: GroupEvent['type'], data: unknown): void {
    for (const l of this.listeners) l({ group, type, data })
  }
}

/** A record as the API shows it; the payload as UTF-8 text. */
export const recordJson = (m: RecordMeta, r?: GroupRecord): Record<string, unknown> => ({
  ...metaOf(m as GroupRecord), group: undefined, hash: undefined, size: undefined,
  ...(r === undefined ? {} : isUtf8(r.payload) ? { payload: r.payload.toString() } : { payloadBase64: r.payload.toString('base64') })
})
