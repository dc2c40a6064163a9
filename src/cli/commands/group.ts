// canopy group create|invite|join|records|watch: groups through the local
// agent's HTTP API (GET/POST /api/groups…, the events stream for watch).

import { request } from 'node:http'
import { CanopyError } from '../../errors'
import { agentBase, agentJson } from '../agent-client'
import { flagBool, flagString, type ParsedArgs } from '../args'
import type { Command } from '../command'

const enc = encodeURIComponent
const base = (args: ParsedArgs): URL => agentBase(flagString(args, 'agent'))
const command = (name: string, args: string, summary: string, path: (a: ParsedArgs) => string, post: ((a: ParsedArgs) => unknown) | null, line: (r: Record<string, unknown>) => string, flags: Command['flags'] = []): Command => ({
  name: `group ${name}`,
  args,
  summary,
  positionals: { min: args === '' ? 0 : 1, max: args === '' ? 0 : 1 },
  flags: [{ name: 'agent', value: 'URL', help: 'agent to use (default http://127.0.0.1:8787)' }, { name: 'json', help: 'print JSON' }, ...flags],
  async run (a, io) {
    const r = await agentJson(base(a), path(a), post === null ? {} : { method: 'POST', body: post(a) }) as Record<string, unknown>
    io.stdout.write((flagBool(a, 'json') ? JSON.stringify(r) : line(r)) + '\n')
    return 0
  }
})
const p0 = (a: ParsedArgs): string => a.positionals[0]!

export const groupCommands: Command[] = [
  command('create', 'NAME', 'create a group (this node owns it); prints its id', () => '/api/groups', (a) => ({ name: p0(a) }), (r) => String(r.id)),
  command('invite', '', 'print an invitation for a node, to pass on out of band', (a) => `/api/groups/${enc(flagString(a, 'group') ?? '-')}/invitations`, (a) => {
    const m = /^(\d+)([smhd])$/.exec(flagString(a, 'expires') ?? '24h')
    const who = flagString(a, 'for')
    if (m === null || who === undefined || flagString(a, 'group') === undefined) throw new CanopyError('USAGE', 'group invite needs --group G --for ID_OR_KEY [--expires 90s|30m|24h|7d]')
    return { for: who, roles: flagString(a, 'roles'), expiresMs: Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]!]! }
  }, (r) => String(r.invitation), [
    { name: 'group', value: 'G', help: 'the group id' },
    { name: 'for', value: 'ID_OR_KEY', help: "the invited node's id or public key" },
    { name: 'roles', value: 'R[,R]', help: 'member (default), admin, reader' },
    { name: 'expires', value: 'DURATION', help: 'validity, e.g. 30m, 24h (default), 7d' }
  ]),
  command('join', 'INVITATION', 'join a group with an invitation', () => '/api/groups/join', (a) => ({ invitation: p0(a) }), (r) => `joined ${String(r.id)}`),
  command('records', 'G', "list a group's records", (a) => `/api/groups/${enc(p0(a))}/records${flagString(a, 'type') === undefined ? '' : `?type=${enc(flagString(a, 'type')!)}`}`, null,
    (r) => (r.records as Array<Record<string, string>>).map((x) => `${x.id} ${x.type} v${x.version} ${x.author!.slice(0, 8)} ${(x.payload ?? '').slice(0, 60)}`).join('\n'),
    [{ name: 'type', value: 'T', help: 'only records of this type' }]),
  {
    ...command('watch', 'G', "print a group's events as they happen", () => '', null, () => ''),
    run: (a, io) => new Promise((resolve, reject) => {
      const req = request(new URL(`/api/groups/${enc(p0(a))}/events`, base(a)), (res) => {
        if (res.statusCode !== 200) reject(new CanopyError('GROUP_NOT_FOUND', `the agent answered ${String(res.statusCode)}`))
        let buf = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          const parts = (buf += c).split('\n\n')
          buf = parts.pop()!
          for (const p of parts) {
            const [, ev, data] = /^event: (.*)\ndata: (.*)$/.exec(p) ?? []
            if (ev !== undefined) io.stdout.write(flagBool(a, 'json') ? `{"event":"${ev}","data":${data!}}\n` : `${ev} ${data!}\n`)
          }
        })
        res.on('end', () => { resolve(0) })
      })
      req.on('error', (err) => { reject(new CanopyError('AGENT_UNREACHABLE', `cannot reach the agent (${err.message})`)) })
      req.end()
    })
  }
]
