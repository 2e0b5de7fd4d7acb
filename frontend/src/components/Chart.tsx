// A uPlot line chart of one or more series that each have their own x values (joined here).
// Live data goes through setData without rebuilding the chart, and a zoom survives updates.

import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { compact, num } from "../lib/format";

export interface Line {
  label: string;
  x: (number | null)[];
  y: (number | null)[];
  color: string;
  width?: number;
  dash?: number[];
  /** "y" (left axis, default) or "y2" (right axis) */
  scale?: "y" | "y2";
  points?: boolean;
}

/** A vertical line across the chart at ``x`` (e.g. where a resumed attempt started). */
export interface Mark {
  x: number;
  label: string;
}

interface Props {
  title: string;
  marks?: Mark[];
  lines: Line[];
  xLabel: string;
  logY?: boolean;
  height?: number;
  y2Label?: string;
  /** Charts sharing a key share the cursor position. */
  syncKey?: string;
  /** Where the x-axis ends at least (the run's last step, for points made every N steps). */
  xEnd?: number | null;
  testId?: string;
}

/** Pairs sorted by x without duplicate or missing x (uPlot needs strictly rising x). */
function clean(line: Line, logY: boolean): [number[], (number | null)[]] {
  const pairs: [number, number | null][] = [];
  for (let i = 0; i < line.x.length; i++) {
    const x = line.x[i];
    let y = line.y[i];
    if (x === null || !Number.isFinite(x)) continue;
    if (y !== null && (!Number.isFinite(y) || (logY && y <= 0))) y = null;
    pairs.push([x, y]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  const xs: number[] = [];
  const ys: (number | null)[] = [];
  for (const [x, y] of pairs) {
    if (xs.length && xs[xs.length - 1] === x) ys[ys.length - 1] = y;
    else {
      xs.push(x);
      ys.push(y);
    }
  }
  return [xs, ys];
}

function joinLines(lines: Line[], logY: boolean, xEnd?: number | null): uPlot.AlignedData {
  if (!lines.length) return [[]];
  const tables = lines.map((l) => clean(l, logY) as uPlot.AlignedData);
  const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
  const xs = data[0] as number[];
  // The x-axis reaches xEnd (a run's last step) even where the series stop earlier.
  if (xEnd != null && Number.isFinite(xEnd) && xs.length && xEnd > xs[xs.length - 1]) {
    return [[...xs, xEnd], ...data.slice(1).map((col) => [...(col as (number | null)[]), null])] as uPlot.AlignedData;
  }
  return data;
}

/** The last x of the joined data (what the axis reaches), for tests and tools. */
function xLast(data: uPlot.AlignedData): number | undefined {
  const xs = data[0];
  return xs.length ? (xs[xs.length - 1] as number) : undefined;
}

function cssVar(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function showLatest(u: uPlot): void {
  const idxs = u.data.map((col) => {
    for (let i = col.length - 1; i >= 0; i--) if (col[i] != null) return i;
    return null;
  });
  if (idxs[0] != null) u.setLegend({ idxs }, false);
}

/** Tick labels with as many decimals as the tick step needs (1.75, 0.0005), compact for big ones.
 *  A log scale leaves some splits null (ticks it does not label). */
function axisValues(_u: uPlot, splits: (number | null)[], _axis: number, _space: number, incr: number): string[] {
  const max = Math.max(0, ...splits.map((v) => Math.abs(v ?? 0)));
  const step = String(Number((incr || 1).toPrecision(6)));
  const dec = Math.min(step.includes("e") ? 6 : (step.split(".")[1] ?? "").length, 8);
  return splits.map((v) => {
    if (v == null) return "";
    if (max >= 1e4) return compact(v); // 10K, not 10000
    if (max !== 0 && max < 1e-3) return v === 0 ? "0" : v.toExponential(1);
    return v.toFixed(dec);
  });
}

function drawMarks(u: uPlot, marks: Mark[], color: string): void {
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineWidth = Math.max(1, devicePixelRatio);
  ctx.setLineDash([5 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.font = `${11 * devicePixelRatio}px sans-serif`;
  for (const m of marks) {
    const x = u.valToPos(m.x, "x", true);
    if (!Number.isFinite(x) || x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillText(m.label, x + 3 * devicePixelRatio, u.bbox.top + 11 * devicePixelRatio);
  }
  ctx.restore();
}

/** A series' legend value: with the cursor off the chart each series shows its own latest
 *  point, so one that ends earlier names its own x ("3.21 @ 40") instead of borrowing the
 *  longest series' x. */
function legendValue(u: uPlot, v: number | null, idx: number | null): string {
  if (v == null) return "–";
  const text = num(v, 4);
  if (u.cursor.idx != null || idx == null) return text;
  const shownX = u.legend.idxs?.[0];
  return shownX != null && shownX !== idx ? `${text} @ ${compact(u.data[0][idx])}` : text;
}

export function Chart({ title, lines, xLabel, logY = false, height = 220, y2Label, syncKey, testId, marks = [], xEnd }: Props) {
  const marksRef = useRef<Mark[]>(marks);
  marksRef.current = marks;
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomed = useRef(false);
  const internal = useRef(false);
  const [isZoomed, setIsZoomed] = useState(false);
  const data = joinLines(lines, logY, xEnd);
  const points = lines.reduce((n, l) => n + l.y.filter((v) => v !== null && Number.isFinite(v)).length, 0);
  // Rebuild only when the shape changes; values alone go through setData.
  const shape = JSON.stringify([lines.map((l) => [l.label, l.color, l.scale, l.dash]), logY, xLabel, y2Label]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const fg = cssVar("--muted", "#666");
    const grid = cssVar("--grid", "rgba(128,128,128,.15)");
    const axis = (scale: string, side?: number, label?: string): uPlot.Axis => ({
      scale,
      side,
      label,
      stroke: fg,
      grid: { stroke: grid, width: 1, show: scale !== "y2" },
      ticks: { stroke: grid, width: 1 },
      values: axisValues,
      size: 56,
    });
    const hasY2 = lines.some((l) => l.scale === "y2");
    const opts: uPlot.Options = {
      width: el.clientWidth || 400,
      height,
      scales: {
        x: { time: false },
        y: { distr: logY ? 3 : 1 },
        y2: { distr: logY ? 3 : 1 },
      },
      axes: [{ ...axis("x", 2, xLabel), grid: { stroke: grid, width: 1 } }, axis("y", 3), ...(hasY2 ? [axis("y2", 1, y2Label)] : [])],
      series: [
        { label: xLabel, value: (_u, v) => (v == null ? "–" : compact(v)) },
        ...lines.map<uPlot.Series>((l) => ({
          label: l.label,
          stroke: l.color,
          width: l.width ?? 1.5,
          dash: l.dash,
          scale: l.scale ?? "y",
          spanGaps: true,
          points: { show: l.points ?? false, size: 5, fill: l.color },
          value: (u, v, _si, idx) => legendValue(u, v, idx),
        })),
      ],
      cursor: syncKey ? { sync: { key: syncKey } } : {},
      legend: { live: true },
      hooks: {
        draw: [(u) => drawMarks(u, marksRef.current, cssVar("--muted", "#666"))],
        // With the cursor off the chart, the legend shows each series' latest value, not "–".
        setCursor: [(u) => u.cursor.idx == null && showLatest(u)],
        setData: [(u) => u.cursor.idx == null && showLatest(u)],
        setScale: [
          (u, key) => {
            if (key !== "x" || internal.current) return;
            // A drag zoom narrows x below the data's extent; a double-click restores it.
            const xs = u.data[0];
            const min = u.scales.x.min ?? 0;
            const max = u.scales.x.max ?? 0;
            zoomed.current = xs.length > 1 && (min > xs[0] || max < xs[xs.length - 1]);
            setIsZoomed(zoomed.current);
          },
        ],
      },
    };
    internal.current = true;
    const u = new uPlot(opts, data, el);
    internal.current = false;
    plot.current = u;
    const ro = new ResizeObserver(() => {
      if (el.clientWidth > 0) u.setSize({ width: el.clientWidth, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
      zoomed.current = false;
      setIsZoomed(false);
    };
  }, [shape, height]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    internal.current = true;
    u.setData(data, !zoomed.current);
    internal.current = false;
  });
  // No redraw of its own: the setData above runs on every render and draws the marks.
  const markKey = marks.map((m) => m.x).join(",");

  const resetZoom = () => {
    zoomed.current = false;
    setIsZoomed(false);
    internal.current = true;
    plot.current?.setData(data, true);
    internal.current = false;
  };

  return (
    <figure class="chart" data-testid={testId} data-points={points} data-marks={markKey} data-x-end={xLast(data)}>
      <figcaption>
        <span>{title}</span>
        {isZoomed ? (
          <button type="button" class="btn btn-small" onClick={resetZoom}>
            Reset zoom
          </button>
        ) : null}
        {points === 0 ? <span class="muted small">no data yet</span> : null}
      </figcaption>
      <div ref={box} class="chart-box" />
    </figure>
  );
}
