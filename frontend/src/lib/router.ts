// Hash routing (#/runs/<id>?x=y): the server needs no routes beyond serving index.html.

import { useEffect, useState } from "preact/hooks";

export interface Route {
  path: string[];
  query: URLSearchParams;
  /** The hash could not be decoded (a stray "%"): the app shows its not-found page. */
  malformed?: boolean;
}

export function parseHash(hash = location.hash): Route {
  const raw = hash.replace(/^#\/?/, "");
  const [p, q = ""] = raw.split("?", 2);
  try {
    return { path: p.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q) };
  } catch {
    return { path: [], query: new URLSearchParams(), malformed: true };
  }
}

export function useRoute(): Route {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const on = () => setRoute(parseHash());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

export function navigate(to: string): void {
  location.hash = to.startsWith("#") ? to : `#${to}`;
}

export const runHref = (id: string) => `#/runs/${encodeURIComponent(id)}`;
