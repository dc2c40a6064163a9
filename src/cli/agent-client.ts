// Talking to a running agent from the CLI: bounded, with a deadline, and an
// error that says what to do when nobody answers.

import { request, type ClientRequest, type IncomingMessage } from 'node:http'
import { CanopyError } from '../errors'
import { CLI_AGENT_TIMEOUT_MS, CLI_RESPONSE_BYTES_MAX, STREAM_JOIN_DEADLINE_MS } from '../limits'

export const DEFAULT_AGENT_URL = 'http://127.0.0.1:8787'

/** The --agent flag of every command that talks to a running agent. */
export const AGENT_FLAG = { name: 'agent', value: 'URL', help: `the agent (default ${DEFAULT_AGENT_URL})` }

export function agentBase (url: string | undefined): URL {
  const text = url ?? DEFAULT_AGENT_URL
  let u: URL | null = null
  try { u = new URL(text) } catch { /* not a URL: refused below */ }
  if (u?.protocol !== 'http:') throw new CanopyError('USAGE', `--agent ${text}: not an http:// URL like ${DEFAULT_AGENT_URL}`)
  return u
}

export interface AgentResponse { status: number, body: Buffer, json (): unknown }
interface CallOptions { method?: string, body?: unknown, timeoutMs?: number }

const ok = (status: number): boolean => status >= 200 && status < 300
const parse = (bytes: Buffer): any => JSON.parse(bytes.toString('utf8'))
const refused = (status: number, body: any): CanopyError =>
  new CanopyError('AGENT_UNREACHABLE', `the agent refused: ${body?.error?.message ?? `HTTP ${status}`}`, { detail: { status, code: body?.error?.code } })

/** Report a failed request: coded errors as they are, anything else as "cannot <verb> the agent ...; <hint>". */
function onFail (req: ClientRequest, reject: (err: unknown) => void, base: URL, verb = 'reach', hint = 'start "canopy agent" or pass --agent URL'): void {
  req.on('error', (err) => {
    reject(CanopyError.is(err) ? err : new CanopyError('AGENT_UNREACHABLE',
      `cannot ${verb} the agent at ${base.origin} (${(err as NodeJS.ErrnoException).code ?? err.message}); ${hint}`))
  })
}

/** The response body, up to CLI_RESPONSE_BYTES_MAX (over it: cut, or just not kept when `cut` is false). */
function collect (req: ClientRequest, res: IncomingMessage, cut: boolean, done: (body: Buffer) => void): void {
  const parts: Buffer[] = []
  let size = 0
  res.on('data', (c: Buffer) => {
    size += c.length
    if (size <= CLI_RESPONSE_BYTES_MAX) parts.push(c)
    else if (cut) req.destroy(new CanopyError('LIMIT_REACHED', `answer over ${CLI_RESPONSE_BYTES_MAX} bytes`))
  })
  res.on('end', () => { done(Buffer.concat(parts)) })
}

export function callAgent (base: URL, path: string, options: CallOptions = {}): Promise<AgentResponse> {
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body))
  const timeoutMs = options.timeoutMs ?? CLI_AGENT_TIMEOUT_MS
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), {
      method: options.method ?? 'GET',
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': payload.length },
      timeout: timeoutMs
    }, (res) => {
      collect(req, res, true, (body) => {
        resolve({
          status: res.statusCode ?? 0,
          body,
          json: () => {
            try { return parse(body) } catch { throw new CanopyError('AGENT_UNREACHABLE', `the agent at ${base.origin} sent no JSON`) }
          }
        })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new CanopyError('TIMEOUT', `the agent at ${base.origin}: no answer in ${timeoutMs} ms`)) })
    onFail(req, reject, base)
    req.end(payload)
  })
}

/** The JSON of a 2xx answer, or the agent's coded error as a CanopyError. */
export async function agentJson (base: URL, path: string, options: CallOptions = {}): Promise<unknown> {
  const res = await callAgent(base, path, options)
  const body = res.json()
  if (ok(res.status)) return body
  throw refused(res.status, body)
}

/**
 * Stream a body to the agent (POST, chunked) from a readable until it ends,
 * then return the agent's JSON answer. No deadline once connected: a live
 * push lasts as long as its input.
 */
export function pushToAgent (base: URL, path: string, input: NodeJS.ReadableStream, headers: Record<string, string>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method: 'POST', headers: { 'content-type': 'video/mp2t', ...headers } }, (res) => {
      collect(req, res, false, (bytes) => {
        let body = null
        try { body = parse(bytes) } catch { /* not JSON */ }
        const status = res.statusCode ?? 0
        if (ok(status)) resolve(body)
        else reject(refused(status, body))
      })
      res.on('error', reject)
    })
    onFail(req, reject, base, 'push to', 'is it running with --push-token?')
    input.on('error', (err) => { req.destroy(err) })
    input.pipe(req)
  })
}

/** Stream the agent's answer (GET) into out until the agent ends it; a non-2xx answer is its coded error. */
export function pullFromAgent (base: URL, path: string, out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method: 'GET' }, (res) => {
      const status = res.statusCode ?? 0
      if (!ok(status)) {
        collect(req, res, false, (bytes) => {
          let body = null
          try { body = parse(bytes) } catch { /* not JSON */ }
          reject(refused(status, body))
        })
        return
      }
      res.pipe(out, { end: false })
      res.on('end', () => { resolve() })
      res.on('error', reject)
      out.on('error', () => { req.destroy(); resolve() }) // the reader went away (EPIPE): done
    })
    // Until the answer starts (the agent may need to find and join the stream); then as long as the stream lasts.
    req.setTimeout(CLI_AGENT_TIMEOUT_MS + STREAM_JOIN_DEADLINE_MS, () => { req.destroy(new CanopyError('TIMEOUT', `the agent at ${base.origin}: no answer`)) })
    req.on('response', () => { req.setTimeout(0) })
    onFail(req, reject, base)
    req.end()
  })
}
