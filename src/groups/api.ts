// The groups' HTTP face: JSON API, Server-Sent Events, the collaboration page.
// Request bodies are checked here with the validate kit (INPUT_INVALID naming
// the field); signRecord checks every field of a record.

import { readJson, sendJson, sendText, type HttpServer } from '../http'
import { parsePublicKey } from '../crypto'
import { nodeIdOf, NODE_ID_PATTERN } from '../identity'
import { GROUP_LIST_COUNT_MAX, GROUP_SSE_BUFFER_BYTES_MAX, GROUP_SSE_CLIENTS_MAX, GROUP_SSE_HEARTBEAT_MS, RECORD_PAYLOAD_BYTES_MAX } from '../limits'
import { body, optionalField as opt } from '../protocol/wire/schema'
import { int, str, validate, type Spec } from '../validate'
import { coded, rolesOf } from './cert'
import { groupPage } from './page'
import { attributes } from './record'
import { recordJson, type GroupEvent, type GroupsService } from './service'

const bad = (m: string): never => { throw coded('INPUT_INVALID', m) }
const S = str({ min: 1, max: 4096 })

export function addGroupRoutes (http: HttpServer, svc: GroupsService): void {
  let clients = 0
  /** A route under /api/groups. */
  const route: HttpServer['route'] = (method, path, fn, options) => { http.route(method, '/api/groups' + path, fn, options) }
  /** A POST with a JSON object body, answered with JSON. */
  const post = <T>(path: string, status: number, spec: Spec<T>, fn: (b: T, g: string) => Promise<unknown> | unknown): void => {
    route('POST', path, async ({ req, res, params }) => {
      sendJson(res, status, await fn(validate(spec, await readJson(req, RECORD_PAYLOAD_BYTES_MAX * 2 + 4096), 'INPUT_INVALID', 'request'), params.g!))
    })
  }
  route('GET', '', ({ res }) => { sendJson(res, 200, { nodeId: svc.me, groups: svc.groups().map(svc.describe) }) })
  post('', 201, body({ name: S }), async (b) => ({ id: await svc.create(b.name.slice(0, 64)) }))
  post('/join', 200, body({ invitation: S }), async (b) => ({ id: await svc.join(b.invitation) }))
  post('/:g/invitations', 201, body({ for: S, roles: opt(S), expiresMs: opt(int(1, 4e10)) }), (b, g) => {
    const key = parsePublicKey(b.for)
    const node = NODE_ID_PATTERN.test(b.for) ? b.for : key !== null ? nodeIdOf(key) : bad('"for": a node id or public key')
    const roles = rolesOf((b.roles ?? 'member').split(',')) || bad('"roles": member, admin, reader')
    return { invitation: svc.invite(g, node, roles, b.expiresMs ?? 864e5) }
  })
  post('/:g/revoke', 200, body({ node: S }), async (b, g) => ({ record: recordJson(await svc.revoke(g, b.node)) }))
  post('/:g/records', 201, body({
    id: opt(str({ max: 32, pattern: /^[0-9a-f]{32}$/, hint: '32 hex digits' })),
    type: S,
    attributes: opt(attributes),
    payload: opt(str({ max: RECORD_PAYLOAD_BYTES_MAX })),
    expiresMs: opt(int(1, Number.MAX_SAFE_INTEGER))
  }), async (b, g) => {
    const r = await svc.write(g, { ...b, payload: Buffer.from(b.payload ?? '') })
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
    if (clients >= GROUP_SSE_CLIENTS_MAX) throw coded('LIMIT_REACHED', 'too many event streams')
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
