// Talking to a running agent from the CLI: bounded, with a deadline, and an
// error that says what to do when nobody answers.

import { request } from 'node:http'
import { CanopyError } from '../errors'
import { CLI_AGENT_TIMEOUT_MS, CLI_RESPONSE_BYTES_MAX, STREAM_JOIN_DEADLINE_MS } from '../limits'

export const DEFAULT_AGENT_URL = 'http://127.0.0.1:8787'

export function agentBase (url: string | undefined): URL {
  const text = url ?? DEFAULT_AGENT_URL
  let u: URL
  try {
    u = new URL(text)
  } catch {
    throw new CanopyError('USAGE', `--agent ${text} is not a URL (like ${DEFAULT_AGENT_URL})`)
  }
  if (u.protocol !== 'http:') throw new CanopyError('USAGE', `--agent must be an http:// URL, got ${text}`)
  return u
}

export interface AgentResponse { status: number, body: Buffer, json (): unknown }

export function callAgent (base: URL, path: string, options: { method?: string, body?: unknown, timeoutMs?: number } = {}): Promise<AgentResponse> {
  const target = new URL(path, base)
  const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body))
  return new Promise((resolve, reject) => {
    const req = request(target, {
      method: options.method ?? 'GET',
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': payload.length },
      timeout: options.timeoutMs ?? CLI_AGENT_TIMEOUT_MS
    }, (res) => {
      const parts: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > CLI_RESPONSE_BYTES_MAX) {
          req.destroy(new CanopyError('LIMIT_REACHED', `the agent's answer exceeds ${CLI_RESPONSE_BYTES_MAX} bytes`))
          return
        }
        parts.push(c)
      })
      res.on('end', () => {
        const body = Buffer.concat(parts)
        resolve({
          status: res.statusCode ?? 0,
          body,
          json: () => {
            try { return JSON.parse(body.toString('utf8')) } catch { throw new CanopyError('AGENT_UNREACHABLE', `the agent at ${base.origin} sent something that is not JSON`) }
          }
        })
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new CanopyError('TIMEOUT', `the agent at ${base.origin} did not answer within ${options.timeoutMs ?? CLI_AGENT_TIMEOUT_MS} ms`)) })
    req.on('error', (err) => {
      reject(CanopyError.is(err) ? err : new CanopyError('AGENT_UNREACHABLE',
        `cannot reach the agent at ${base.origin} (${(err as NodeJS.ErrnoException).code ?? err.message}); start one with "canopy agent" or pass --agent URL`))
    })
    req.end(payload)
  })
}

/** The JSON of a 2xx answer, or the agent's coded error as a CanopyError. */
export async function agentJson (base: URL, path: string, options: { method?: string, body?: unknown, timeoutMs?: number } = {}): Promise<unknown> {
  const res = await callAgent(base, path, options)
  const body = res.json() as { error?: { code?: string, message?: string } }
  if (res.status >= 200 && res.status < 300) return body
  const message = body?.error?.message ?? `HTTP ${res.status}`
  throw new CanopyError('AGENT_UNREACHABLE', `the agent refused: ${message}`, { detail: { status: res.status, code: body?.error?.code } })
}

/**
 * Stream a body to the agent (POST, chunked) from a readable until it ends,
 * then return the agent's JSON answer. No deadline once connected: a live
 * push lasts as long as its input.
 */
export function pushToAgent (base: URL, path: string, input: NodeJS.ReadableStream, headers: Record<string, string>): Promise<unknown> {
  const target = new URL(path, base)
  return new Promise((resolve, reject) => {
    const req = request(target, { method: 'POST', headers: { 'content-type': 'video/mp2t', ...headers } }, (res) => {
      const parts: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => { size += c.length; if (size <= CLI_RESPONSE_BYTES_MAX) parts.push(c) })
      res.on('end', () => {
        let body: { error?: { message?: string } } | null = null
        try { body = JSON.parse(Buffer.concat(parts).toString('utf8')) } catch { /* not JSON */ }
        if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) resolve(body)
        else reject(new CanopyError('AGENT_UNREACHABLE', `the agent refused: ${body?.error?.message ?? `HTTP ${res.statusCode ?? 0}`}`, { detail: { status: res.statusCode } }))
      })
      res.on('error', reject)
    })
    req.on('error', (err) => {
      reject(new CanopyError('AGENT_UNREACHABLE', `cannot push to the agent at ${base.origin} (${(err as NodeJS.ErrnoException).code ?? err.message}); is it running with --push-token?`))
    })
    input.on('error', (err) => { req.destroy(err) })
    input.pipe(req)
  })
}

/** Stream the agent's answer (GET) into out until the agent ends it; a non-2xx answer is its coded error. */
export function pullFromAgent (base: URL, path: string, out: NodeJS.WritableStream): Promise<void> {
  const target = new URL(path, base)
  return new Promise((resolve, reject) => {
    const req = request(target, { method: 'GET' }, (res) => {
      if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
        const parts: Buffer[] = []
        res.on('data', (c: Buffer) => { if (parts.length < 64) parts.push(c) })
        res.on('end', () => {
          let message = `HTTP ${res.statusCode ?? 0}`
          try { message = (JSON.parse(Buffer.concat(parts).toString('utf8')) as { error: { message: string } }).error.message } catch { /* not JSON */ }
          reject(new CanopyError('AGENT_UNREACHABLE', `the agent refused: ${message}`, { detail: { status: res.statusCode } }))
        })
        return
      }
      res.pipe(out, { end: false })
      res.on('end', () => { resolve() })
      res.on('error', reject)
      out.on('error', () => { req.destroy(); resolve() }) // the reader went away (EPIPE): done
    })
    // Until the answer starts (the agent may need to find and join the stream); then as long as the stream lasts.
    req.setTimeout(CLI_AGENT_TIMEOUT_MS + STREAM_JOIN_DEADLINE_MS, () => { req.destroy(new CanopyError('TIMEOUT', `the agent at ${base.origin} did not answer`)) })
    req.on('response', () => { req.setTimeout(0) })
    req.on('error', (err) => {
      reject(CanopyError.is(err) ? err : new CanopyError('AGENT_UNREACHABLE', `cannot reach the agent at ${base.origin} (${(err as NodeJS.ErrnoException).code ?? err.message}); start one with "canopy agent" or pass --agent URL`))
    })
    req.end()
  })
}
