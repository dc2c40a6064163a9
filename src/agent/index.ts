export { Agent, type AgentOptions } from './agent'
export { buildAgent, type BuildOptions } from './compose'
export { addLanProtocol, type LanProtocol, type LanProtocolOptions } from './protocol'
export type { Service } from './service'
