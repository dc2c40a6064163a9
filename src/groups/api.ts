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

const bad = (m: string): never => { throw new CanopyError('INPUT_INVALID', m) }
const str = (v: unknown, what: string): string => (typeof v === 'string' && v.length > 0 && v.length <= 4096 ? v : bad(`"${what}": a string`))

const G = '/api/groups'

export function addGroupRoutes (http: HttpServer, svc: GroupsService): void {
  let clients = 0
  /** A route under /api/groups. */
  const route: HttpServer['route'] = (method, path, fn, options) => { http.route(method, G + path, fn, options) }
  /** A POST with a JSON object body, answered with JSON. */
  const post = (path: string, status: number, fn: (b: Record<string, unknown>, g: string) => Promise<unknown> | unknown): void => {
    route('POST', path, async ({ req, res, params }) => {
      const b = await readJson(req, RECORD_PAYLOAD_BYTES_MAX * 2 + 4096)
      sendJson(res, status, await fn(typeof b === 'object' && b !== null && !Array.isArray(b) ? b as Record<string, unknown> : bad('a JSON object'), params.g!))
    })
  }
  route('GET', '', ({ res }) => { sendJson(res, 200, { nodeId: svc.me, groups: svc.groups().map(svc.describe) }) })
  post('', 201, async (b) => ({ id: await svc.create(str(b.name, 'name').slice(0, 64)) }))
  post('/join', 200, async (b) => ({ id: await svc.join(str(b.invitation, 'invitation')) }))
  post('/:g/invitations', 201, (b, g) => {
    const who = str(b.for, 'for')
    const key = parsePublicKey(who)
    const node = NODE_ID_PATTERN.test(who) ? who : key !== null ? nodeIdOf(key) : bad('"for": a node id or public key')
    const roles = rolesOf(String(b.roles ?? 'member').split(',')) || bad('"roles": member, admin, reader')
    const ms = Number(b.expiresMs ?? 864e5)
    return { invitation: svc.invite(g, node, roles, ms > 0 && ms < 4e10 ? ms : bad('"expiresMs": 1 ms to a year')) }
  })
  post('/:g/revoke', 200, async (b, g) => ({ record: recordJson(await svc.revoke(g, str(b.node, 'node'))) }))
  post('/:g/records', 201, async (b, g) => {
    const a = b.attributes ?? {}
    if (typeof a !== 'object' || a === null || Object.values(a).some((v) => typeof v !== 'string')) bad('"attributes": names to strings')
    if (b.id !== undefined && !/^[0-9a-f]{32}$/.test(String(b.id))) bad('"id": 32 hex')
    const r = await svc.write(g, {
      id: b.id as string | undefined,
      type: str(b.type, 'type'),
      attributes: a as Record<string, string>,
      payload: Buffer.from(typeof b.payload === 'string' ? b.payload : ''),
      expiresMs: typeof b.expiresMs === 'number' ? b.expiresMs : undefined
    })
    return { record: recordJson(r, r) }
  })
  route('GET', '/:g/records', async ({ res, params: { g }, url }) => {
    const store = svc.check(g!)
    const q = url.searchParams
    const attributes: Record<string, string> = {}
    for (const [k, v] of q) if (k.startsWith('a.')) attributes[k.slice(2)] = v
    const records = []
    for (const m of store.list(g!, { type: q.get('type') || undefined, attributes, deleted: q.has('deleted'), limit: Math.min(Number(q.get('limit')) || GROUP_LIST_COUNT_MAX, GROUP_LIST_COUNT_MAX) })) {
      records.push(recordJson(m, await store.read(m).catch(() => undefined)))
    }
    sendJson(res, 200, { records })
  })
  route('DELETE', '/:g/records/:id', async ({ res, params: { g, id } }) => {
    await svc.remove(g!, id!)
    sendJson(res, 200, { deleted: id })
  })
  route('GET', '/:g/events', ({ res, params: { g } }) => {
    svc.check(g!)
    if (clients >= GROUP_SSE_CLIENTS_MAX) throw new CanopyError('LIMIT_REACHED', 'too many event streams')
    clients++
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    const write = (s: string): void => {
      res.write(s)
      if (res.writableLength > GROUP_SSE_BUFFER_BYTES_MAX) res.destroy() // a reader that does not keep up is cut off
    }
    const send = (e: Omit<GroupEvent, 'group'>): void => { write(`event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`) }
    const listener = (e: GroupEvent): void => { if (e.group === g) send(e) }
    const beat = svc.o.hal.clock.setInterval(() => { write(':\n\n') }, GROUP_SSE_HEARTBEAT_MS)
    svc.listeners.add(listener)
    res.on('close', () => { clients--; svc.listeners.delete(listener); beat.cancel() })
    send({ type: 'status', data: svc.describe(g!) })
  }, { longBody: true })
  http.route('GET', '/groups/:g', ({ res, params: { g } }) => {
    svc.check(g!)
    sendText(res, 200, groupPage(g!), 'text/html; charset=utf-8')
  })
}
