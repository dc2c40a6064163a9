// /healthz, /api/status, /metrics and the status page.

import type { Agent } from './agent'
import { renderStatusPage, sendJson, sendText, type PageSection } from '../http'

export function addStatusRoutes (agent: Agent): void {
  const { http } = agent
  http.route('GET', '/healthz', ({ res }) => {
    if (agent.stopping) sendJson(res, 503, { status: 'stopping' })
    else sendJson(res, 200, { status: 'ok', nodeId: agent.identity.nodeId })
  }, { access: 'any' })

  http.route('GET', '/api/status', ({ res }) => { sendJson(res, 200, agent.status()) })

  http.route('GET', '/metrics', ({ res }) => {
    sendText(res, 200, agent.metrics.render(), 'text/plain; version=0.0.4; charset=utf-8')
  })

  http.route('GET', '/', ({ res }) => {
    const sections: PageSection[] = agent.services.flatMap((s) => s.page?.() ?? [])
    const title = `Canopy ${agent.config.name !== '' ? `“${agent.config.name}” ` : ''}· node ${agent.identity.nodeId.slice(0, 12)}`
    sendText(res, 200, renderStatusPage(title, agent.status(), sections), 'text/html; charset=utf-8')
  })
}
