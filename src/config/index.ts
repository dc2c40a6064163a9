export { configSpec, type Config } from './schema'
export { loadConfig, checkConfig, mergeConfig, parseConfigText, defaultConfig, type ConfigOverrides } from './load'
