/**
 * A PF's VFs as a grid of buttons. Each tile says its state in words and
 * shows it by a pattern as well as a colour, so it reads without colour;
 * arrow keys move between tiles (one tab stop for the grid), Enter or
 * Space opens the VF's detail. The grid wraps to the width it has, so a
 * 256-VF PF fits a 1366-pixel screen and 200 % zoom.
 */
import { useRef } from 'preact/hooks';
import type { Allocation, PfInfo } from './types.js';
import { workloadText } from './ui.js';

export type VfState = 'free' | 'pending' | 'configured' | 'attached' | 'releasing' | 'failed';

export interface VfTile {
  state: VfState;
  /** The allocation holding it, or the failed one nobody replaced. */
  allocation: Allocation | null;
}

const RANK: Record<string, number> = { attached: 5, configured: 4, pending: 3, releasing: 2, failed: 1 };

/** Each VF's state from the allocations on its PF: a holding allocation before a failed one. */
export function vfStates(pf: PfInfo, allocations: Allocation[]): Map<number, VfTile> {
  const tiles = new Map<number, VfTile>();
  for (const vf of pf.vfs) tiles.set(vf.index, { state: 'free', allocation: null });
  for (const a of allocations) {
    if (a.vfIndex === undefined || !a.state || !(a.state in RANK)) continue;
    const now = tiles.get(a.vfIndex);
    if (!now || (now.allocation && RANK[now.allocation.state!]! >= RANK[a.state]!)) continue;
    tiles.set(a.vfIndex, { state: a.state as VfState, allocation: a });
  }
  return tiles;
}


export function VfGrid({ pf, states, selected, onSelect }: { pf: PfInfo; states: Map<number, VfTile>; selected: number | null; onSelect: (vf: number) => void }) {
  const grid = useRef<HTMLDivElement>(null);
  const focusTile = (from: number, delta: number | 'home' | 'end') => {
    const buttons = [...(grid.current?.querySelectorAll<HTMLButtonElement>('button.vf') ?? [])];
    const i = buttons.findIndex((b) => Number(b.dataset.vf) === from);
    const next = delta === 'home' ? 0 : delta === 'end' ? buttons.length - 1 : Math.max(0, Math.min(buttons.length - 1, i + delta));
    buttons[next]?.focus();
  };
  const perRow = () => {
    const first = grid.current?.querySelector<HTMLElement>('button.vf');
    return first && grid.current ? Math.max(1, Math.floor(grid.current.clientWidth / first.offsetWidth)) : 8;
  };
  const onKey = (e: KeyboardEvent, vf: number) => {
    const moves: Record<string, number | 'home' | 'end'> = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow(), ArrowUp: -perRow(), Home: 'home', End: 'end' };
    const move = moves[e.key];
    if (move === undefined) return;
    e.preventDefault();
    focusTile(vf, move);
  };
  const focusable = selected ?? pf.vfs[0]?.index;
  if (pf.vfs.length === 0) return <p>No VFs: the PF has numVfs 0.</p>;
  return (
    <div>
      <h3 id={`grid-${pf.pciAddress}`}>VFs of {pf.name}</h3>
      <p class="muted legend">
        Arrow keys move between VFs; Enter shows a VF's detail. Legend: <span class="vf-key vf-attached">attached</span> <span class="vf-key vf-configured">configured</span>{' '}
        <span class="vf-key vf-pending">pending</span> <span class="vf-key vf-releasing">releasing</span> <span class="vf-key vf-failed">failed</span>{' '}
        <span class="vf-key vf-free">free</span>
      </p>
      <div ref={grid} class="vf-grid" role="group" aria-labelledby={`grid-${pf.pciAddress}`}>
        {pf.vfs.map((vf) => {
          const tile = states.get(vf.index) ?? { state: 'free' as VfState, allocation: null };
          const who = tile.allocation ? `, ${workloadText(tile.allocation)}` : '';
          return (
            <button
              key={vf.index}
              type="button"
              class={`vf vf-${tile.state}`}
              data-vf={vf.index}
              data-state={tile.state}
              tabIndex={vf.index === focusable ? 0 : -1}
              aria-pressed={vf.index === selected}
              onClick={() => onSelect(vf.index)}
              onKeyDown={(e) => onKey(e, vf.index)}
            >
              {/* The name read out is the text: `VF 3: attached, container upf-1 (net1)`; sighted users see `3 attached`. */}
              <span class="vf-index">
                <span class="visually-hidden">VF </span>
                {vf.index}
                <span class="visually-hidden">:</span>
              </span>{' '}
              <span class="vf-state">
                {tile.state}
                {who && <span class="visually-hidden">{who}</span>}
              </span>
            </button>
          );
        })}
      </div>
    </div>
  );
}
