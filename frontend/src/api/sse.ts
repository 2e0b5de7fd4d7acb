// EventSource with reconnect-and-backoff. The browser's own retry keeps no state and gives up on
// HTTP errors, so we close and reopen ourselves and tell the caller to re-fetch what it may have missed.

import { tokenUrl } from "./client";

export type SseState = "connecting" | "live" | "reconnecting";

export interface SseOptions {
  /** event name -> handler of the parsed JSON data */
  handlers: Record<string, (data: any) => void>;
  /** On every open, the first included: re-fetch state so nothing sent before the stream
   *  was attached (or while it was down) is missed. Handlers must tolerate duplicates. */
  onOpen?: (first: boolean) => void;
  onState?: (s: SseState) => void;
}

export function subscribe(path: string, opts: SseOptions): () => void {
  let es: EventSource | null = null;
  let closed = false;
  let delay = 1000;
  let opened = false;
  let timer: number | undefined;

  const connect = () => {
    if (closed) return;
    opts.onState?.(opened ? "reconnecting" : "connecting");
    es = new EventSource(tokenUrl(path));
    es.onopen = () => {
      delay = 1000;
      opts.onState?.("live");
      opts.onOpen?.(!opened);
      opened = true;
    };
    for (const [name, fn] of Object.entries(opts.handlers)) {
      es.addEventListener(name, (ev) => {
        try {
          fn(JSON.parse((ev as MessageEvent).data));
        } catch (err) {
          console.error("bad SSE payload", name, err);
        }
      });
    }
    es.onerror = () => {
      es?.close();
      if (closed) return;
      opts.onState?.("reconnecting");
      timer = window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  };
  connect();
  return () => {
    closed = true;
    window.clearTimeout(timer);
    es?.close();
  };
}
