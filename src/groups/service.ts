// Groups as an agent service: memberships (and owned root keys) in
// <dataDir>/groups.json, records on their own flash area, propagation on the
// peer link's channel 2 sealed per link (crypt.ts), each group's members
// linked as a sparse graph (a few neighbours each), the LAN's default group
// formed by every agent on the LAN. The HTTP API and events: api.ts.

import { isUtf8 } from 'node:buffer'
import type { Config } from '../config'
import { CanopyError, type ErrorCode } from '../errors'
import { TimerGroup, type Hal } from '../hal'
import type { PageSection } from '../http'
import type { Identity } from '../identity'
import { GROUP_DIALS_PER_ROUND_MAX, GROUP_FILE_BYTES_MAX, GROUP_JOIN_MS, GROUP_PURGE_MS, GROUPS_COUNT_MAX, RECORD_BYTES_MAX } from '../limits'
import type { Logger } from '../log'
import type { PeerDirectory } from '../protocol'
import { framePayload, LINK_PORT_DEFAULT, type Link, type LinkHost } from '../protocol/link'
import { encodeCbor } from '../protocol/wire/cbor'
import { boundBytesMax, FlashCache } from '../flash-cache/store'
import { coded, hex, checkInvitation, decodeChain, formatInvitation, invitationError, issue, LAN_GROUP, newGroup, parseInvitation, roleNames, verifyChain } from './cert'
import type { KeyShares, Session } from './crypt'
import { derivedId, metaOf, signRecord, type GroupRecord, type RecordDraft, type RecordMeta } from './record'
import { memberDraft, notIn, openStore, type RecordStore } from './store'
import { createSync, type GroupMessage, type GroupSync } from './sync'

/** A membership as groups.json keeps it: the chain's certificates and the owned root key in base64. */
interface Entry { name: string, chain: string[], root?: string }
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

const IO = 16
const b64 = (s: string): Buffer => Buffer.from(s, 'base64')
const base64 = (c: Buffer[]): string[] => c.map((b) => b.toString('base64'))

export type Groups = ReturnType<typeof createGroups>
/** The service as compose.ts builds it (`new GroupsService(o)`): createGroups, whose object `new` returns. */
export type GroupsService = Groups
export const GroupsService = createGroups as unknown as new (o: GroupsOptions) => Groups

export function createGroups (o: GroupsOptions) {
  const { hal, identity: id, log, links } = o
  const c = o.config.groups
  const me = id.nodeId
  const file = `${hal.dataDir}/groups.json`
  const entries = new Map<string, Entry>()
  const listeners = new Set<(e: GroupEvent) => void>()
  const sessions = new WeakMap<Link, Session | null>()
  const joins = new Map<string, (m: GroupMessage) => void>()
  const timers = new TimerGroup(hal.clock)
  const now = (): number => hal.clock.wallMs()
  let store: RecordStore | null = null
  let flash: FlashCache | null = null
  let error: string | null = null
  let sync!: GroupSync

  const emit = (group: string, type: GroupEvent['type'], data: unknown): void => { for (const l of listeners) l({ group, type, data }) }
  const myRecord = (g: string): RecordMeta | undefined => store!.get(g, derivedId('member', me))

  const entry = (g: string): Entry => entries.get(g) ?? notIn(g)
  const chainOf = (g: string): Buffer[] => entry(g).chain.map(b64)
  /** A group I am in (GROUP_NOT_FOUND otherwise). */
  const check = (g: string): RecordStore => (store?.group(g) === undefined ? notIn(g) : store!)

  /** May this link have g's traffic? On the LAN group, every agent of the LAN; else members, not revoked. */
  const may = (g: string, l: Link): boolean | undefined => {
    const ix = store?.group(g)
    return g === LAN_GROUP ? c.lan && o.lan(l.remoteAddress) : ix?.m.has(l.nodeId) && !ix.v.has(l.nodeId)
  }
  /** Linked peers that may have g's traffic. */
  const peers = (g: string): string[] => links.list().filter((l) => l.open && l.serves('group') && may(g, l)).map((l) => l.nodeId)

  const groups = (): string[] => [...(store !== null && c.lan ? [LAN_GROUP] : []), ...entries.keys()]

  /** host:port where my link listens, as others should dial it. */
  function contact (): string {
    let host = o.config.link.host ?? o.config.http.host
    if (host === '0.0.0.0' || host === '::') host = hal.nics.list().find((n) => n.role === 'lan' && n.up)?.addresses.find((a) => a.family === 4)?.address ?? '127.0.0.1'
    return `${host.includes(':') ? `[${host}]` : host}:${links.listenPort}`
  }

  /** Dial a node at "host:port" (an IPv6 host may be in brackets). */
  function dial (node: string, addr = ''): Promise<unknown> {
    const a = /^\[?([^\]]+)\]?:(\d+)$/.exec(addr)
    return a === null ? Promise.reject(invitationError('INVALID', `no address for ${node}`)) : links.connect(a[1]!, Number(a[2]), node)
  }

  /** Sign as this node, store, flood. */
  async function put (d: RecordDraft): Promise<GroupRecord> {
    const r = signRecord(d, id.publicKey, id.privateKey)
    await store!.apply(r)
    sync.flood(r)
    return r
  }

  /** Add, update or delete (a tombstone) a record as this node; flooded to the group. */
  async function write (g: string, w: Write): Promise<GroupRecord> {
    const i = w.id ?? hex(hal.random.bytes(16))
    const t = now()
    const del = !!w.deleted
    return await put({
      group: g, id: i, type: w.type, version: (check(g).get(g, i)?.version ?? 0) + 1, created: t, deleted: del,
      expires: del ? t + c.tombstoneMs : w.expiresMs ? t + w.expiresMs : 0,
      attributes: w.attributes ?? {}, payload: w.payload ?? Buffer.alloc(0)
    })
  }

  /** My member record, written again when my address changed. */
  async function announce (g: string): Promise<void> {
    const old = myRecord(g)
    if (old?.attributes.addr !== contact()) await put(memberDraft(chainOf(g), (old?.version ?? 0) + 1, now(), contact()))
  }

  /** Become a member of g: groups.json, then the records the inviter welcomed us with, then my member record. */
  async function enter (g: string, e: Entry, from = '', welcome: Buffer[] = []): Promise<void> {
    entries.set(g, e)
    await hal.files.writeAtomic(file, Buffer.from(JSON.stringify(Object.fromEntries(entries))), 0o600)
    store!.ensure(g)
    await sync.take(from, g, welcome, true)
    await announce(g)
  }

  /** Join requests (as inviter) and welcomes (as joiner). */
  async function control (peer: string, m: GroupMessage): Promise<void> {
    const g = m.group
    if (m.m === 'o') return joins.get(g)?.(m)
    try {
      const e = entry(g)
      const s = check(g)
      const v = checkInvitation(decodeChain(m.d ?? Buffer.alloc(0)), now() / 1000, (n) => s.group(g)!.v.has(n))
      if (v.g !== g || v.s !== peer || !v.k.equals(id.publicKey)) throw invitationError('FOREIGN', 'wrong node or group')
      const mine = myRecord(g)
      const r = mine && await s.read(mine)
      sync.send(peer, g, { m: 'o', d: encodeCbor(issue(chainOf(g), id, { g, s: peer, r: v.r, x: 0, n: e.name })), r: r ? [r.bytes] : [] })
      emit(g, 'member', { node: peer, joined: true })
    } catch (err) {
      const x = CanopyError.from(err, 'GROUP_INVITATION_INVALID')
      sync.send(peer, g, { m: 'o', t: [x.code, x.message] })
    }
  }

  /** Keep each group's neighbours linked; one anti-entropy round per group. */
  function round (): void {
    for (const g of groups()) {
      const linked = new Set(peers(g))
      if (linked.size < c.neighbours) {
        const cand: Array<[string, string?]> = g === LAN_GROUP
          ? o.peers.list().map((p) => [p.nodeId, `${p.address}:${p.linkPort ?? LINK_PORT_DEFAULT}`])
          : store!.list(g, { type: 'member' }).filter((m) => m.attributes.addr !== undefined && !store!.group(g)!.v.has(m.author)).map((m) => [m.author, m.attributes.addr])
        const todo = cand.filter(([n]) => !linked.has(n) && n !== me)
        for (let i = 0; i < GROUP_DIALS_PER_ROUND_MAX && todo.length; i++) {
          const [n, addr] = todo.splice(hal.random.int(todo.length), 1)[0]!
          dial(n, addr).catch((err: unknown) => { log.debug('unreachable', { node: n, err }) })
        }
      }
      sync.tick(g)
    }
  }

  /** A link's sealing keys, made at its first group frame (null: it has none). */
  function session (l: Link): Session | null {
    if (!sessions.has(l)) sessions.set(l, o.shares.session(l.extension, l.peerExtension, l.initiator))
    return sessions.get(l)!
  }

  function describe (g: string): Record<string, unknown> {
    const ix = store?.group(g)
    const linked = peers(g)
    return { id: g, name: entries.get(g)?.name ?? 'LAN', roles: roleNames(ix?.m.get(me) ?? 2), members: g === LAN_GROUP ? linked.length + 1 : ix?.m.size, records: ix?.r.size, linked }
  }

  links.on('group', (l, f) => {
    if (store === null) return
    const p = session(l)?.open(framePayload(f))
    if (p == null) l.close('protocol')
    else void sync.receive(l.nodeId, p)
  })
  const status = (l: Link, up: boolean): void => {
    for (const g of groups()) {
      if (may(g, l)) {
        emit(g, 'status', { node: l.nodeId, linked: up })
        if (up && l.initiator) sync.summarize(g, l.nodeId)
      }
    }
  }
  links.onOpen((l) => { if (l.serves('group')) status(l, true) })
  links.onClosed((l) => { status(l, false) })

  const svc = {
    name: 'groups',
    o,
    me,
    listeners,
    get store () { return store },
    get sync () { return sync },
    peers,
    groups,
    check,
    describe,
    write,

    async start (): Promise<void> {
      if (!c.enabled) return
      const text = await hal.files.read(file, GROUP_FILE_BYTES_MAX)
      try {
        for (const [g, e] of Object.entries(JSON.parse(text?.toString() ?? '{}') as Record<string, Entry>)) entries.set(g, { name: e.name, chain: e.chain.map(String), root: e.root })
      } catch (err) {
        log.error('bad groups.json', { err })
      }
      const bytesMax = boundBytesMax(c.blockBytes, c.blockCount, IO)
      try { // like the cache: a records area that cannot be opened is reported, and the agent runs without groups
        const f = await hal.openFlash('records', { readBytes: IO, programBytes: IO, blockBytes: c.blockBytes, blockCount: c.blockCount })
        flash = await FlashCache.open(f, { clock: hal.clock, bytesMax, piecesMax: c.recordsMax + 1, writeBudgetBytesPerDay: o.config.cache.writeBudgetBytesPerDay, log })
        store = await openStore(flash, {
          clock: hal.clock,
          recordsMax: c.recordsMax,
          bytesMax: bytesMax - RECORD_BYTES_MAX,
          perMinute: c.recordsPerAuthorPerMinute,
          log,
          onChange: (m, change, r) => { emit(m.group, m.type === 'member' ? 'member' : 'record', { change, record: recordJson(m, r) }) }
        }, (g) => entries.has(g) || (g === LAN_GROUP && c.lan))
      } catch (err) {
        error = CanopyError.from(err, 'FLASH_IO').message
        log.error('groups off: no store', { err })
        return
      }
      const s = store
      sync = createSync({
        store: s,
        random: hal.random,
        log,
        send (peer, m) {
          const l = links.get(peer)
          if (!l?.open || !l.serves('group')) return false
          const x = session(l)?.seal(m)
          return x != null ? l.send('group', x) : (l.close('protocol'), false)
        },
        peers,
        control: (p, m) => { void control(p, m) },
        synced: (g, peer) => { emit(g, 'sync', { peer }) }
      })
      for (const g of groups()) s.ensure(g)
      timers.setInterval(round, c.syncIntervalMs)
      timers.setInterval(() => { s.purge().catch((err: unknown) => { log.warn('purge failed', { err }) }) }, GROUP_PURGE_MS)
    },

    async ready (): Promise<void> {
      if (store === null) return
      // my member records carry the link address, which is known now
      for (const g of entries.keys()) await announce(g).catch((err: unknown) => { log.warn('announce failed', { group: g, err }) })
      round()
    },

    async stop (): Promise<void> {
      timers.clearAll()
      // LinkHost.stop awaits server.close() before closing links, and that waits for accepted links to end: close them first.
      for (const l of links.list()) l.close('shutdown')
      await store?.purge().catch(() => {})
      await flash?.close()
    },

    async create (name: string): Promise<string> {
      if (entries.size >= GROUPS_COUNT_MAX) throw coded('LIMIT_REACHED', 'too many groups')
      const root = hal.random.bytes(32)
      const { group, chain } = newGroup(name, id, root)
      await enter(group, { name, chain: base64(chain), root: root.toString('base64') })
      return group
    },

    invite (g: string, forNode: string, roles: number, expiresMs: number): string {
      const e = entry(g)
      return formatInvitation(issue(chainOf(g), id, { g, s: forNode, r: roles, x: Math.ceil((now() + expiresMs) / 1000), n: e.name, a: `${me}@${contact()}` }))
    },

    /** Join with an invitation: dial the inviter, present it, take the membership it signs, then sync in full from it. */
    async join (text: string): Promise<string> {
      const m = parseInvitation(text, now() / 1000)
      const g = m.g
      if (m.s !== me) throw invitationError('FOREIGN', `the invitation is for node ${m.s}`)
      if (entries.has(g)) return g
      const [inviter, addr] = m.a!.split('@') as [string, string?]
      await dial(inviter, addr)
      const w = await new Promise<GroupMessage>((resolve, reject) => {
        const t = timers.setTimeout(() => { joins.delete(g); reject(coded('TIMEOUT', 'inviter did not answer')) }, GROUP_JOIN_MS)
        joins.set(g, (x) => { t.cancel(); joins.delete(g); resolve(x) })
        sync.send(inviter, g, { m: 'j', d: encodeCbor(m.chain) })
      })
      if (w.d === undefined) throw coded(...(w.t ?? ['GROUP_INVITATION_INVALID', 'refused']) as [ErrorCode, string])
      const chain = decodeChain(w.d)
      const v = verifyChain(chain, now() / 1000)
      if (v.g !== g || v.s !== me || v.x !== 0) throw invitationError('INVALID', 'bad welcome')
      await enter(g, { name: m.n, chain: base64(chain) }, inviter, w.r)
      sync.summarize(g, inviter)
      return g
    },

    async remove (g: string, i: string): Promise<void> {
      const old = check(g).get(g, i)
      if (old?.deleted !== false) throw coded('RECORD_NOT_FOUND', `no record ${i}`)
      await write(g, { id: i, type: old.type, attributes: old.attributes, deleted: true })
    },

    revoke: (g: string, node: string): Promise<GroupRecord> => write(g, { id: derivedId('revoke', node), type: 'revoke', attributes: { node } }),

    status: (): unknown => (store === null ? { error } : { groups: groups().map(describe), records: store.count, bytes: store.bytes, counters: sync.counters }),

    page: (): PageSection | null => (store === null ? null : { title: 'groups', html: groups().map((g) => `<a href="/groups/${g}">${g === LAN_GROUP ? 'LAN' : g}</a> `).join('') })
  }
  return svc
}

/** A record as the API shows it; the payload as UTF-8 text. */
export const recordJson = (m: RecordMeta, r?: GroupRecord): Record<string, unknown> => ({
  ...metaOf(m as GroupRecord), group: undefined, hash: undefined, size: undefined,
  ...(r && (isUtf8(r.payload) ? { payload: r.payload.toString() } : { payloadBase64: r.payload.toString('base64') }))
})
