// Talking to a running agent from the CLI: bounded, with a deadline, and an
// error that says what to do when nobody answers.

import { request } from 'node:http'
import { CanopyError } from '../errors'
import { CLI_AGENT_TIMEOUT_MS, CLI_RESPONSE_BYTES_MAX } from '../limits'

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
