// Groups, the replicated record store, and collaboration (issue 6).
export { addGroupRoutes } from './api'
export { KeyShares } from './crypt'
export { GroupsService } from './service'
