// Log lines that follow the tail while the user is at the bottom, with search and a jump to
// the first error. Lines are plain text nodes, so any script renders with the page's font stack.

import { useEffect, useMemo, useRef, useState } from "preact/hooks";

const ERROR_RE = /Traceback|\bError\b|Error:|\bERROR\b|Exception|out of memory|FAILED|Killed/;

interface Props {
  lines: string[];
  /** Text above the first line, e.g. a "load earlier" button. */
  header?: preact.ComponentChildren;
}

export function LogViewer({ lines, header }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState("");
  const [current, setCurrent] = useState<number | null>(null);

  const matches = useMemo(() => {
    if (!query) return [];
    const q = query.toLowerCase();
    const out: number[] = [];
    lines.forEach((l, i) => {
      if (l.toLowerCase().includes(q)) out.push(i);
    });
    return out;
  }, [lines, query]);
  const firstError = useMemo(() => lines.findIndex((l) => ERROR_RE.test(l)), [lines]);

  useEffect(() => {
    const el = scroller.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [lines, follow]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (atBottom !== follow) setFollow(atBottom);
  };

  const jumpTo = (i: number) => {
    setFollow(false);
    setCurrent(i);
    const el = scroller.current?.querySelector<HTMLElement>(`[data-line="${i}"]`);
    el?.scrollIntoView({ block: "center" });
  };

  const step = (dir: 1 | -1) => {
    if (!matches.length) return;
    const pos = current === null ? -1 : matches.indexOf(current);
    const next = matches[(pos + dir + matches.length) % matches.length];
    jumpTo(next);
  };

  const matchSet = new Set(matches);
  return (
    <div class="logs">
      <div class="logs-toolbar">
        <label class="search">
          <span class="sr-only">Search the log</span>
          <input
            type="search"
            placeholder="Search log…"
            value={query}
            onInput={(e) => {
              setQuery((e.target as HTMLInputElement).value);
              setCurrent(null);
            }}
            onKeyDown={(e) => e.key === "Enter" && step(e.shiftKey ? -1 : 1)}
          />
        </label>
        {query ? (
          <span class="muted small" aria-live="polite" data-testid="log-matches">
            {matches.length} match{matches.length === 1 ? "" : "es"}
          </span>
        ) : null}
        <button type="button" class="btn btn-small" onClick={() => step(1)} disabled={!matches.length}>
          Next
        </button>
        <button type="button" class="btn btn-small" onClick={() => jumpTo(firstError)} disabled={firstError < 0} title={firstError < 0 ? "no error in the loaded lines" : undefined}>
          First error
        </button>
        <label class="check">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} /> Follow
        </label>
      </div>
      <div class="logs-body" ref={scroller} onScroll={onScroll} tabIndex={0} role="region" aria-label="log output" data-testid="log">
        {header}
        {lines.length === 0 ? <div class="muted log-empty">No output yet.</div> : null}
        {lines.map((line, i) => (
          <div key={i} data-line={i} class={`log-line${matchSet.has(i) ? " log-match" : ""}${i === current ? " log-current" : ""}${ERROR_RE.test(line) ? " log-error" : ""}`}>
            {line || "\u00a0"}
          </div>
        ))}
      </div>
    </div>
  );
}
