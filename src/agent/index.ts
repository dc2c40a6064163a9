export { Agent, type AgentOptions } from './agent'
export { buildAgent } from './compose'
export type { Service } from './service'
export { addDiscovery } from './discovery'
