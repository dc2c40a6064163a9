// Where self-descriptions come from. The agent fetches them with httpGet over
// hal.net (real sockets on a device, SimNetwork streams in a simulation);
// tests may plug in anything that returns bytes or throws a coded error.

import type { Clock, Net } from '../../hal'
import { DESCRIBE_BYTES_MAX, DESCRIBE_HEAD_BYTES_MAX, DESCRIBE_TIMEOUT_MS } from '../../limits'
import { httpGet, type GetTarget } from './http-get'

export interface DescribeFetcher {
  /** The body at target (≤ DESCRIBE_BYTES_MAX, within DESCRIBE_TIMEOUT_MS), or a coded error. */
  fetch (target: GetTarget): Promise<Buffer>
}

export function netDescribeFetcher (net: Net, clock: Clock, userAgent: string): DescribeFetcher {
  const limits = { timeoutMs: DESCRIBE_TIMEOUT_MS, headBytesMax: DESCRIBE_HEAD_BYTES_MAX, bodyBytesMax: DESCRIBE_BYTES_MAX }
  return { fetch: (target) => httpGet(net, clock, target, limits, userAgent) }
}
