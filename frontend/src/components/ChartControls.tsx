export type XAxis = "step" | "tokens";

export interface ChartOpts {
  x: XAxis;
  logY: boolean;
  smoothing: number;
}

/** x-axis, log scale and EMA weight; shared by the run and compare pages. */
export function ChartControls({ opts, onChange }: { opts: ChartOpts; onChange: (o: ChartOpts) => void }) {
  return (
    <div class="chart-controls" role="group" aria-label="Chart options">
      <fieldset class="seg">
        <legend class="sr-only">x-axis</legend>
        {(["step", "tokens"] as const).map((x) => (
          <label key={x} class={opts.x === x ? "on" : ""}>
            <input type="radio" name="xaxis" value={x} checked={opts.x === x} onChange={() => onChange({ ...opts, x })} />
            {x === "step" ? "by step" : "by tokens seen"}
          </label>
        ))}
      </fieldset>
      <label class="check">
        <input type="checkbox" checked={opts.logY} onChange={(e) => onChange({ ...opts, logY: (e.target as HTMLInputElement).checked })} /> log scale
      </label>
      <label class="slider">
        smoothing
        <input type="range" min={0} max={0.99} step={0.01} value={opts.smoothing} onInput={(e) => onChange({ ...opts, smoothing: Number((e.target as HTMLInputElement).value) })} />
        <span class="mono small">{opts.smoothing.toFixed(2)}</span>
      </label>
      <span class="muted small">drag to zoom · double-click to reset</span>
    </div>
  );
}
