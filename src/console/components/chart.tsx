/**
 * A time-series chart on uPlot (small, canvas-drawn). The canvas is
 * decoration for sighted users: the figure's caption and the table the
 * caller renders beside it carry the same numbers as text.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Line {
  label: string;
  values: number[];
  colour: string;
  dash?: number[];
}

export function Chart({ title, t, lines, unit }: { title: string; t: number[]; lines: Line[]; unit: (n: number) => string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = lines.map((l) => l.label).join('|');
  const data = [t.map((ms) => ms / 1000), ...lines.map((l) => l.values)] as uPlot.AlignedData;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height: 200,
      series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.colour, width: 2, dash: l.dash, value: (_u: uPlot, v: number | null) => (v === null ? '—' : unit(v)) }))],
      axes: [{}, { values: (_u: uPlot, ticks: number[]) => ticks.map(unit), size: 80 }],
      scales: { x: { time: true } },
    };
    plot.current = new uPlot(opts, data, el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(280, el.clientWidth), height: 200 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-box" aria-hidden="true" />
    </figure>
  );
}
