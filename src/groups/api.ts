// The groups' HTTP face: JSON API, Server-Sent Events, the collaboration page.
// Input is checked here for shape; signRecord checks every field of a record.

import type { IncomingMessage } from 'node:http'
import { CanopyError } from '../errors'
import { readJson, sendJson, sendText, type HttpServer } from '../http'
import { parsePublicKey } from '../crypto'
import { nodeIdOf, NODE_ID_PATTERN } from '../identity'
import { GROUP_LIST_COUNT_MAX, GROUP_SSE_BUFFER_BYTES_MAX, GROUP_SSE_CLIENTS_MAX, GROUP_SSE_HEARTBEAT_MS, RECORD_PAYLOAD_BYTES_MAX } from '../limits'
import { rolesOf } from './cert'
import { groupPage } from './page'
import { recordJson, type GroupEvent, type GroupsService } from './service'

const bad = (m: string): never => { throw new CanopyError('INPUT_INVALID', m) }
async function body (req: IncomingMessage): Promise<Record<string, unknown>> {
  const b = await readJson(req, RECORD_PAYLOAD_BYTES_MAX * 2 + 4096)
  return typeof b === 'object' && b !== null && !Array.isArray(b) ? b as Record<string, unknown> : bad('a JSON object')
}
const str = (v: unknown, what: string): string => (typeof v === 'string' && v.length > 0 && v.length <= 4096 ? v : bad(`"${what}": a string`))

export function addGroupRoutes (http: HttpServer, svc: GroupsService): void {
  let clients = 0
  const route = http.route.bind(http)
  route('GET', '/api/groups', ({ res }) => { sendJson(res, 200, { nodeId: svc.me, groups: svc.groups().map((g) => svc.describe(g)) }) })
  route('POST', '/api/groups', async ({ req, res }) => {
    sendJson(res, 201, { id: await svc.create(str((await body(req)).name, 'name').slice(0, 64)) })
  })
  route('POST', '/api/groups/join', async ({ req, res }) => {
    sendJson(res, 200, { id: await svc.join(str((await body(req)).invitation, 'invitation')) })
  })
  route('POST', '/api/groups/:g/invitations', async ({ req, res, params }) => {
    const b = await body(req)
    const who = str(b.for, 'for')
    const key = parsePublicKey(who)
    const node = NODE_ID_PATTERN.test(who) ? who : key !== null ? nodeIdOf(key) : bad('"for": a node id or public key')
    const roles = rolesOf(String(b.roles ?? 'member').split(',')) || bad('"roles": member, admin, reader')
    const ms = Number(b.expiresMs ?? 86_400_000)
    sendJson(res, 201, { invitation: svc.invite(params.g!, node, roles, ms > 0 && ms < 4e10 ? ms : bad('"expiresMs": 1 ms to a year')) })
  })
  route('POST', '/api/groups/:g/revoke', async ({ req, res, params }) => {
    sendJson(res, 200, { record: recordJson(await svc.revoke(params.g!, str((await body(req)).node, 'node'))) })
  })
  route('GET', '/api/groups/:g/records', async ({ res, params, url }) => {
    const g = params.g!
    const store = svc.check(g)
    const q = url.searchParams
    const attributes: Record<string, string> = {}
    for (const [k, v] of q) if (k.startsWith('a.')) attributes[k.slice(2)] = v
    const records = []
    for (const m of store.list(g, { type: q.get('type') ?? undefined, attributes, deleted: q.has('deleted'), limit: Math.min(Number(q.get('limit')) || GROUP_LIST_COUNT_MAX, GROUP_LIST_COUNT_MAX) })) {
      records.push(recordJson(m, await store.read(m).catch(() => undefined)))
    }
    sendJson(res, 200, { records })
  })
  route('POST', '/api/groups/:g/records', async ({ req, res, params }) => {
    const b = await body(req)
    const a = b.attributes ?? {}
    if (typeof a !== 'object' || a === null || Object.values(a).some((v) => typeof v !== 'string')) bad('"attributes": names to strings')
    if (b.id !== undefined && !/^[0-9a-f]{32}$/.test(String(b.id))) bad('"id": 32 hex')
    const r = await svc.write(params.g!, {
      id: b.id as string | undefined,
      type: str(b.type, 'type'),
      attributes: a as Record<string, string>,
      payload: Buffer.from(typeof b.payload === 'string' ? b.payload : ''),
      expiresMs: typeof b.expiresMs === 'number' ? b.expiresMs : undefined
    })
    sendJson(res, 201, { record: recordJson(r, r) })
  })
  route('DELETE', '/api/groups/:g/records/:id', async ({ res, params }) => {
    await svc.remove(params.g!, params.id!)
    sendJson(res, 200, { deleted: params.id })
  })
  route('GET', '/api/groups/:g/events', ({ res, params }) => {
    const g = params.g!
    svc.check(g)
    if (clients >= GROUP_SSE_CLIENTS_MAX) throw new CanopyError('LIMIT_REACHED', 'too many event streams')
    clients++
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
    const write = (s: string): void => {
      res.write(s)
      if (res.writableLength > GROUP_SSE_BUFFER_BYTES_MAX) res.destroy() // a reader that does not keep up is cut off
    }
    const send = (e: Pick<GroupEvent, 'type' | 'data'>): void => { write(`event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`) }
    const listener = (e: GroupEvent): void => { if (e.group === g) send(e) }
    const beat = svc.o.hal.clock.setInterval(() => { write(':\n\n') }, GROUP_SSE_HEARTBEAT_MS)
    svc.listeners.add(listener)
    res.on('close', () => { clients--; svc.listeners.delete(listener); beat.cancel() })
    send({ type: 'status', data: svc.describe(g) })
  }, { longBody: true })
  route('GET', '/groups/:g', ({ res, params }) => {
    svc.check(params.g!)
    sendText(res, 200, groupPage(params.g!), 'text/html; charset=utf-8')
  })
}
