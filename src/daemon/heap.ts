/**
 * The agent's heap. V8 grows its semi-spaces up to 16 MB each
 * (32 MB of RSS) for a process that allocates fast, which an agent does only
 * in bursts (an inventory walk, a report), and it rarely gives them back. An
 * agent runs on every SR-IOV host, beside the workloads it serves, so
 * `sriovd agent` keeps them at their initial size (1 MB each) unless the
 * operator sized them: `NODE_OPTIONS=--max-semi-space-size=N` (or the flag on
 * node's command line) wins.
 *
 * Why not `--max-semi-space-size` here: V8 reads it once, when the heap is
 * set up, before any of our code runs; setting it later changes nothing. The
 * growth factor is read each time the young generation would grow, so a
 * factor of 1 stops the growth from now on. The controller keeps V8's
 * defaults: its allocation bursts (a fleet's reports, thousands of
 * allocations) are what the larger young generation is for.
 *
 * With so small a young generation, what an agent's first pass (the whole
 * inventory walked and reported) holds for more than a moment is promoted,
 * and V8's default heap growth then keeps ~18 MB of it as garbage until its
 * memory reducer runs, seconds later. `--optimize-for-size` (read as the heap
 * grows, so setting it here takes effect) grows the old generation less and
 * collects it sooner: on a 4 x 256-VF host the agent's peak is ~10 MB lower
 * (bench/agent-memory.ts), for a few percent more CPU per pass.
 */
import { setFlagsFromString } from 'node:v8';

const OPERATOR_FLAG = /--(max-semi-space-size|min-semi-space-size|semi-space-growth-factor|max-young-generation-size)\b/;

/** Whether the operator chose the young generation's size on node's command line or in NODE_OPTIONS. */
export function youngGenerationSized(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return execArgv.some((a) => OPERATOR_FLAG.test(a)) || OPERATOR_FLAG.test(nodeOptions);
}

/**
 * Has V8 favour memory over speed, and keeps the young generation at its
 * initial size unless the operator sized it; returns whether it did that.
 */
export function keepAgentHeapSmall(): boolean {
  setFlagsFromString('--optimize-for-size');
  if (youngGenerationSized()) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
