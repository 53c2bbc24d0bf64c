#!/usr/bin/env node
// An agent's heap is kept small from its first allocation on, before any module loads (src/daemon/heap.ts).
if (process.argv[2] === 'agent') (await import('../dist/src/daemon/heap.js')).keepAgentHeapSmall();
const { main } = await import('../dist/src/daemon/main.js');

await main(process.argv.slice(2));
