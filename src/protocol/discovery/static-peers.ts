// Static peers: agents named in config by URL ("http://192.168.1.5:8787"),
// for networks where multicast does not work. Only IP literals: the HAL has
// no name resolution, and a peer must be the address it claims.

import { parseIp, formatIp } from '../../hal'
import { DESCRIBE_PATH } from '../ssdp/names'
import type { GetTarget } from './http-get'

const STATIC_URL = /^http:\/\/(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\]):(\d{1,5})\/?$/

/** The describe target of a static peer URL, or null when it is not http://IP:PORT[/]. */
export function parseStaticPeer (url: string): GetTarget | null {
  const m = STATIC_URL.exec(url)
  if (!m) return null
  const text = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!
  const ip = parseIp(text)
  const port = Number(m[2])
  if (!ip || port < 1 || port > 65535) return null
  return { host: formatIp(ip), port, path: DESCRIBE_PATH }
}
