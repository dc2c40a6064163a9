// Live-media spanning-tree relay (issue 5). Its only door.
export {}
