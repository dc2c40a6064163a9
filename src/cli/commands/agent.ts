// canopy agent: run the agent in the foreground until SIGTERM/SIGINT.

import { buildAgent } from '../../agent'
import { loadConfig, type ConfigOverrides } from '../../config'
import { CanopyError } from '../../errors'
import { createLinuxFiles, createLinuxHal } from '../../hal'
import { SHUTDOWN_MS_MAX } from '../../limits'
import { createLogger } from '../../log'
import { VERSION } from '../../version'
import { flagBool, flagString, TRUST_FLAG, trustFlags, type ParsedArgs } from '../args'
import type { CliIo, Command } from '../command'

/** "HOST:PORT", ":PORT", "PORT" or "[V6]:PORT" into config fields; odd parts go to validation as they are. */
export function parseHttpFlag (text: string): { host?: string, port?: unknown } {
  const m = /^\[([^\]]*)\](?::(.*))?$/.exec(text)
  if (m !== null) return { host: m[1], ...(m[2] === undefined ? {} : { port: toPort(m[2]) }) }
  const colon = text.lastIndexOf(':')
  if (colon === -1) return /^\d+$/.test(text) ? { port: toPort(text) } : { host: text }
  const host = text.slice(0, colon)
  return { ...(host === '' ? {} : { host }), port: toPort(text.slice(colon + 1)) }
}

const toPort = (s: string): unknown => (/^\d{1,6}$/.test(s) ? Number(s) : s)

const splitList = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x.length > 0)

export function overridesFromFlags (args: ParsedArgs): ConfigOverrides {
  const o: Record<string, unknown> = {}
  const data = flagString(args, 'data')
  if (data !== undefined) o.dataDir = data
  const http = flagString(args, 'http')
  if (http !== undefined) o.http = parseHttpFlag(http)
  const interfaces: Record<string, string[]> = {}
  for (const role of ['lan', 'wan']) {
    const list = flagString(args, role)
    if (list !== undefined) interfaces[role] = splitList(list)
  }
  if (Object.keys(interfaces).length > 0) o.interfaces = interfaces
  const pushToken = flagString(args, 'push-token')
  if (pushToken !== undefined) o.stream = { pushToken }
  return o
}

export const agentCommand: Command = {
  name: 'agent',
  summary: 'run the agent in the foreground',
  positionals: { min: 0, max: 0 },
  flags: [
    { name: 'config', value: 'F', help: 'JSON config file' },
    { name: 'data', value: 'DIR', help: 'data directory' },
    { name: 'http', value: 'HOST:PORT', help: 'listen address (default 0.0.0.0:8787)' },
    { name: 'lan', value: 'IF[,IF]', help: 'LAN interfaces (default: by address)' },
    { name: 'wan', value: 'IF', help: 'WAN interface' },
    TRUST_FLAG,
    { name: 'push-token', value: 'T', help: 'token for pushing live streams' },
    { name: 'print-config', help: 'print the effective config and exit' }
  ],
  async run (args, io) {
    const files = createLinuxFiles()
    const config = await loadConfig(files, flagString(args, 'config') ?? null, overridesFromFlags(args))
    for (const key of trustFlags(args)) if (!config.trustedPublishers.includes(key)) config.trustedPublishers.push(key)
    if (flagBool(args, 'print-config')) {
      io.stdout.write(JSON.stringify(config, null, 2) + '\n')
      return 0
    }
    const hal = await createLinuxHal({ dataDir: config.dataDir, roles: config.interfaces, nicPollMs: config.interfaces.pollMs })
    const log = createLogger({
      level: config.log.level,
      nowMs: () => hal.clock.nowMs(),
      wallMs: () => hal.clock.wallMs(),
      write: (line) => { io.stdout.write(line + '\n') }
    })
    let agent
    try {
      agent = await buildAgent(config, hal, log)
      await agent.start()
    } catch (err) {
      await hal.close()
      throw err
    }
    io.stderr.write(`canopy ${VERSION}: node ${agent.identity.nodeId} is up; status page ${agent.url} (logs: stdout)\n`)
    return await waitForSignal(agent, io)
  }
}

function waitForSignal (agent: { stop (deadlineMs: number): Promise<void> }, io: CliIo): Promise<number> {
  return new Promise((resolve) => {
    let signalled = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) {
        io.stderr.write(`canopy: second ${signal}, exiting now\n`)
        process.exit(1)
      }
      signalled = true
      const timer = setTimeout(() => {
        io.stderr.write(`canopy: not stopped in ${SHUTDOWN_MS_MAX} ms, exiting\n`)
        process.exit(1)
      }, SHUTDOWN_MS_MAX + 250)
      agent.stop(SHUTDOWN_MS_MAX - 100).then(
        () => { clearTimeout(timer); resolve(0) },
        (err: unknown) => { clearTimeout(timer); io.stderr.write(`canopy: ${CanopyError.from(err, 'ASSERTION').message}\n`); resolve(1) })
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
}
