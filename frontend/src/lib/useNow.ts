import { useEffect, useState } from "preact/hooks";

/** Re-renders every `ms` so durations of running runs tick without server traffic. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [ms]);
  return now;
}
