// What a subsystem gives the agent: start/stop in order, a piece of
// /api/status and of the status page. The agent knows nothing else about it.

import type { PageSection } from '../http'

export interface Service {
  readonly name: string
  start? (): Promise<void>
  /** After the HTTP port listens (its address is known): e.g. discovery may now advertise it. */
  ready? (): Promise<void>
  /** Stop by the deadline (monotonic ms budget); release sockets, timers, files. */
  stop? (deadlineMs: number): Promise<void>
  /** JSON for /api/status under `name`. */
  status? (): unknown
  /** Extra HTML for the status page. */
  page? (): PageSection | null
}
