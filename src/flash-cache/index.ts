// Crash-safe content-addressed piece store on flash (issue 4). Its only door.
export {}
