// The groups' HTTP face: JSON API, Server-Sent Events, the collaboration page.
// Input is checked here for shape; signRecord checks every field of a record.

import { CanopyError } from '../errors'
import { readJson, sendJson, sendText, type HttpServer } from '../http'
import { parsePublicKey } from '../crypto'
import { nodeIdOf, NODE_ID_PATTERN } from '../identity'
import { GROUP_LIST_COUNT_MAX, GROUP_SSE_BUFFER_BYTES_MAX, GROUP_SSE_CLIENTS_MAX, GROUP_SSE_HEARTBEAT_MS, RECORD_PAYLOAD_BYTES_MAX } from '../limits'
import { rolesOf } from './cert'
import { groupPage } from './page'
import { recordJson, type GroupEvent, type GroupsService } from './service'

const bad = (m: string): CanopyError => new CanopyError('INPUT_INVALID', m)
const body = async (req: Parameters<typeof readJson>[0]): Promise<Record<string, unknown>> => {
  const b = await readJson(req, RECORD_PAYLOAD_BYTES_MAX * 2 + 4096)
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw bad('the body is a JSON object')
  return b as Record<string, unknown>
}
const text = (v: unknown, what: string, optional = false): string | undefined => {
  if (v === undefined && optional) return undefined
  if (typeof v !== 'string' || v.length === 0) throw bad(`"${what}" is a non-empty string`)
  return v
}

export function addGroupRoutes (http: HttpServer, svc: GroupsService): void {
  let clients = 0
  const clock = svc.o.hal.clock
  http.route('GET', '/api/groups', ({ res }) => { sendJson(res, 200, { nodeId: svc.me, groups: svc.groups().map((g) => svc.describe(g)) }) })
  http.route('POST', '/api/groups', async ({ req, res }) => {
    const name = text((await body(req)).name, 'name')!
    if (name.length > 64) throw bad('"name" is at most 64 characters')
    sendJson(res, 201, { id: await svc.create(name) })
  })
  http.route('POST', '/api/groups/join', async ({ req, res }) => {
    sendJson(res, 200, { id: await svc.join(text((await body(req)).invitation, 'invitation')!) })
  })
  http.route('POST', '/api/groups/:g/invitations', async ({ req, res, params }) => {
    const b = await body(req)
    const who = text(b.for, 'for')!
    const key = NODE_ID_PATTERN.test(who) ? null : parsePublicKey(who)
    if (key === null && !NODE_ID_PATTERN.test(who)) throw bad('"for" is a node id (32 hex) or a public key')
    const roles = rolesOf(String(b.roles ?? 'member').split(','))
    const ms = typeof b.expiresMs === 'number' && b.expiresMs > 0 && b.expiresMs <= 366 * 86_400_000 ? b.expiresMs : 86_400_000
    if (roles === 0) throw bad('"roles": member, admin or reader')
    sendJson(res, 201, { invitation: svc.invite(params.g!, key === null ? who : nodeIdOf(key), roles, ms) })
  })
  http.route('POST', '/api/groups/:g/revoke', async ({ req, res, params }) => {
    const node = text((await body(req)).node, 'node')!
    sendJson(res, 200, { record: recordJson(await svc.revoke(params.g!, node)) })
  })
  http.route('GET', '/api/groups/:g/records', async ({ res, params, url }) => {
    const g = params.g!
    const store = svc.check(g)
    const q = url.searchParams
    const attributes: Record<string, string> = {}
    for (const [k, v] of q) if (k.startsWith('a.')) attributes[k.slice(2)] = v
    const metas = store.list(g, { type: q.get('type') ?? undefined, attributes, deleted: q.get('deleted') === '1', limit: Math.min(Number(q.get('limit') ?? GROUP_LIST_COUNT_MAX) || GROUP_LIST_COUNT_MAX, GROUP_LIST_COUNT_MAX) })
    const records = []
    for (const m of metas) records.push(recordJson(m, await store.read(m).catch(() => undefined)))
    sendJson(res, 200, { records })
  })
  http.route('POST', '/api/groups/:g/records', async ({ req, res, params }) => {
    const b = await body(req)
    const attributes = b.attributes ?? {}
    if (typeof attributes !== 'object' || attributes === null || Object.values(attributes).some((v) => typeof v !== 'string')) throw bad('"attributes" maps names to strings')
    const r = await svc.write(params.g!, {
      id: b.id === undefined ? undefined : /^[0-9a-f]{32}$/.test(String(b.id)) ? String(b.id) : (() => { throw bad('"id" is 32 hex characters') })(),
      type: text(b.type, 'type')!,
      attributes: attributes as Record<string, string>,
      payload: Buffer.from(text(b.payload, 'payload', true) ?? ''),
      expiresMs: typeof b.expiresMs === 'number' ? b.expiresMs : undefined
    })
    sendJson(res, 201, { record: recordJson(r, r) })
  })
  http.route('DELETE', '/api/groups/:g/records/:id', async ({ res, params }) => {
    await svc.remove(params.g!, params.id!)
    sendJson(res, 200, { deleted: params.id })
  })
  http.route('GET', '/api/groups/:g/events', ({ res, params }) => {
    const g = params.g!
    svc.check(g)
    if (clients >= GROUP_SSE_CLIENTS_MAX) throw new CanopyError('LIMIT_REACHED', `${GROUP_SSE_CLIENTS_MAX} event streams are open already`)
    clients++
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    const write = (s: string): void => {
      res.write(s)
      if (res.writableLength > GROUP_SSE_BUFFER_BYTES_MAX) res.destroy() // a reader that does not keep up is cut off
    }
    const listener = (e: GroupEvent): void => { if (e.group === g) write(`event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`) }
    const beat = clock.setInterval(() => { write(':\n\n') }, GROUP_SSE_HEARTBEAT_MS)
    svc.listeners.add(listener)
    res.on('close', () => { clients--; svc.listeners.delete(listener); beat.cancel() })
    write(`event: status\ndata: ${JSON.stringify(svc.describe(g))}\n\n`)
  }, { longBody: true })
  http.route('GET', '/groups/:g', ({ res, params }) => {
    svc.check(params.g!)
    sendText(res, 200, groupPage(params.g!), 'text/html; charset=utf-8')
  })
}
