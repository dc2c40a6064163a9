// canopy group create|invite|join|records|watch: groups through the local
// agent's HTTP API (GET/POST /api/groups…, the events stream for watch).

import { Writable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { CanopyError } from '../../errors'
import { agentBase, agentJson, DEFAULT_AGENT_URL, pullFromAgent } from '../agent-client'
import { flagBool, flagString, type FlagSpec, type ParsedArgs } from '../args'
import type { Command } from '../command'

const enc = encodeURIComponent
type Out = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

/** A command that calls the agent once: `call` gives the path and, for a POST, the body; `line` the text output. */
function command (name: string, args: string, summary: string, call: (a: ParsedArgs) => [string, unknown?], line: (r: Out) => string, flags: FlagSpec[] = []): Command {
  const n = args === '' ? 0 : 1
  return {
    name: `group ${name}`,
    args,
    summary,
    positionals: { min: n, max: n },
    flags: [{ name: 'agent', value: 'URL', help: `default ${DEFAULT_AGENT_URL}` }, { name: 'json', help: 'print JSON' }, ...flags],
    async run (a, io) {
      const [path, body] = call(a)
      const r = await agentJson(agentBase(flagString(a, 'agent')), path, body === undefined ? {} : { method: 'POST', body }) as Out
      io.stdout.write((flagBool(a, 'json') ? JSON.stringify(r) : line(r)) + '\n')
      return 0
    }
  }
}
const p0 = (a: ParsedArgs): string => a.positionals[0]!
const UNITS: Record<string, number> = { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }

export const groupCommands: Command[] = [
  command('create', 'NAME', 'create a group owned by this node; prints its id', (a) => ['/api/groups', { name: p0(a) }], (r) => r.id),
  command('invite', '', 'print an invitation for a node', (a) => {
    const m = /^(\d+)([smhd])$/.exec(flagString(a, 'expires') ?? '24h')
    const [g, who] = [flagString(a, 'group'), flagString(a, 'for')]
    if (m === null || who === undefined || g === undefined) throw new CanopyError('USAGE', 'needs --group, --for and --expires like 90s, 30m, 24h, 7d')
    return [`/api/groups/${enc(g)}/invitations`, { for: who, roles: flagString(a, 'roles'), expiresMs: Number(m[1]) * UNITS[m[2]!]! }]
  }, (r) => r.invitation, [
    { name: 'group', value: 'G', help: 'the group id' },
    { name: 'for', value: 'ID_OR_KEY', help: 'node id or public key' },
    { name: 'roles', value: 'R[,R]', help: 'member (default), admin, reader' },
    { name: 'expires', value: 'DURATION', help: 'e.g. 30m, 24h (default), 7d' }
  ]),
  command('join', 'INVITATION', 'join a group with an invitation', (a) => ['/api/groups/join', { invitation: p0(a) }], (r) => `joined ${r.id}`),
  command('records', 'G', "list a group's records", (a) => [`/api/groups/${enc(p0(a))}/records?type=${enc(flagString(a, 'type') ?? '')}`],
    (r) => r.records.map((x: Out) => `${x.id} ${x.type} v${x.version} ${x.author.slice(0, 8)} ${(x.payload ?? '').slice(0, 60)}`).join('\n'),
    [{ name: 'type', value: 'T', help: 'only records of this type' }]),
  {
    ...command('watch', 'G', "print a group's events as they happen", () => [''], () => ''),
    async run (a, io) {
      let buf = ''
      const utf8 = new StringDecoder()
      const json = flagBool(a, 'json')
      await pullFromAgent(agentBase(flagString(a, 'agent')), `/api/groups/${enc(p0(a))}/events`, new Writable({
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
