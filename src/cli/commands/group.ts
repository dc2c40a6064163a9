// canopy group create|invite|join|records|watch: groups through the local
// agent's HTTP API (GET/POST /api/groups…, the events stream for watch).

import { Writable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { CanopyError } from '../../errors'
import { agentBase, agentJson, DEFAULT_AGENT_URL, pullFromAgent } from '../agent-client'
import { flagBool, flagString, type FlagSpec, type ParsedArgs } from '../args'
import type { Command } from '../command'

const enc = encodeURIComponent
const API = '/api/groups'
const flag = (name: string, help: string, value?: string): FlagSpec => ({ name, help, value })
type Out = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** A command that calls the agent once: `call` gives the path under /api/groups and, for a POST, the body; `line` the text output. */
function command (name: string, args: string, summary: string, call: (a: ParsedArgs) => [string, unknown?], line: (r: Out) => string, flags: FlagSpec[] = []): Command {
  const n = args === '' ? 0 : 1
  return {
    name: `group ${name}`,
    args,
    summary,
    positionals: { min: n, max: n },
    flags: [flag('agent', `default ${DEFAULT_AGENT_URL}`, 'URL'), flag('json', 'print JSON'), ...flags],
    async run (a, io) {
      const [path, body] = call(a)
      const r = await agentJson(agentBase(flagString(a, 'agent')), API + path, body === undefined ? {} : { method: 'POST', body }) as Out
      io.stdout.write((flagBool(a, 'json') ? JSON.stringify(r) : line(r)) + '\n')
      return 0
    }
  }
}
const p0 = (a: ParsedArgs): string => a.positionals[0]!
const UNITS: Record<string, number> = { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }

export const groupCommands: Command[] = [
  command('create', 'NAME', 'create a group, print its id', (a) => ['', { name: p0(a) }], (r) => r.id),
  command('invite', '', 'invite a node', (a) => {
    const m = /^(\d+)([smhd])$/.exec(flagString(a, 'expires') ?? '24h')
    const [g, who] = [flagString(a, 'group'), flagString(a, 'for')]
    if (m === null || who === undefined || g === undefined) throw new CanopyError('USAGE', 'needs --group, --for; --expires like 30m, 7d')
    return [`/${enc(g)}/invitations`, { for: who, roles: flagString(a, 'roles'), expiresMs: Number(m[1]) * UNITS[m[2]!]! }]
  }, (r) => r.invitation, [
    flag('group', 'group id', 'G'),
    flag('for', 'node id or public key', 'ID_OR_KEY'),
    flag('roles', 'member (default), admin, reader', 'R[,R]'),
    flag('expires', '30m, 24h (default), 7d', 'DURATION')
  ]),
  command('join', 'INVITATION', 'join a group', (a) => ['/join', { invitation: p0(a) }], (r) => `joined ${r.id}`),
  command('records', 'G', 'list records', (a) => [`/${enc(p0(a))}/records?type=${enc(flagString(a, 'type') ?? '')}`],
    (r) => r.records.map((x: Out) => `${x.id} ${x.type} v${x.version} ${x.author.slice(0, 8)} ${(x.payload ?? '').slice(0, 60)}`).join('\n'),
    [flag('type', 'only this type', 'T')]),
  {
    ...command('watch', 'G', 'print events as they come', () => [''], () => ''),
    async run (a, io) {
      let buf = ''
      const utf8 = new StringDecoder()
      const json = flagBool(a, 'json')
      await pullFromAgent(agentBase(flagString(a, 'agent')), `${API}/${enc(p0(a))}/events`, new Writable({
        write (c: Buffer, _, done) {
          const parts = (buf += utf8.write(c)).split('\n\n')
          buf = parts.pop()!
          for (const p of parts) {
            const [, ev, data] = /^event: (.*)\ndata: (.*)$/.exec(p) ?? []
            if (ev !== undefined) io.stdout.write(json ? `{"event":"${ev}","data":${data!}}\n` : `${ev} ${data!}\n`)
          }
          done()
        }
      }))
      return 0
    }
  }
]
