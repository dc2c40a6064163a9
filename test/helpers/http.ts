// A tiny HTTP client for tests, with a deadline on every request.

import { request, type IncomingMessage } from 'node:http'

export interface Reply { status: number, body: Buffer, text: string, headers: Record<string, string | string[] | undefined>, json <T = any>(): T }

/** `proxy`: send the request to that proxy in absolute form, as curl with http_proxy does. */
export function httpRequest (url: string, options: { method?: string, body?: string | Buffer, headers?: Record<string, string>, timeoutMs?: number, proxy?: string } = {}): Promise<Reply> {
  const common = { method: options.method ?? 'GET', headers: options.headers, timeout: options.timeoutMs ?? 5000 }
  const via = options.proxy === undefined ? null : new URL(options.proxy)
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', () => {
        const body = Buffer.concat(parts)
        resolve({ status: res.statusCode ?? 0, body, text: body.toString(), headers: res.headers, json: () => JSON.parse(body.toString()) })
      })
      res.on('error', reject)
    }
    const req = via === null ? request(url, common, onResponse) : request({ ...common, host: via.hostname, port: via.port, path: url }, onResponse)
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Poll until fn resolves truthy or the deadline passes. */
export async function waitFor<T> (fn: () => Promise<T | undefined | null | false>, deadlineMs: number, what: string): Promise<T> {
  const end = Date.now() + deadlineMs
  let last: unknown
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v !== undefined && v !== null && v !== false) return v
    } catch (err) { last = err }
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}${last !== undefined ? ` (last error: ${String(last)})` : ''}`)
}
