// The log tail kept in the browser: chunks arrive by byte offset (SSE, or fetched to fill a
// gap), possibly twice or overlapping; each byte is appended exactly once.

const enc = new TextEncoder();
const dec = new TextDecoder();
const MAX_LINES = 20000;

export type ApplyResult = "appended" | "duplicate" | "gap";

export class LogBuffer {
  lines: string[] = [];
  partial = "";
  /** Bytes before `start` were never loaded (tail view). */
  start = 0;
  next = 0;
  dropped = 0;

  constructor(readonly attempt: number) {}

  /** Start from a tail fetched at byte `offset`. */
  reset(offset: number, text: string, next: number): void {
    this.lines = [];
    this.partial = "";
    this.start = offset;
    this.next = offset;
    this.dropped = 0;
    this.apply(offset, text);
    this.next = Math.max(this.next, next);
  }

  apply(offset: number, text: string): ApplyResult {
    const bytes = enc.encode(text);
    const end = offset + bytes.length;
    if (end <= this.next) return "duplicate";
    if (offset > this.next) return "gap";
    const fresh = offset === this.next ? text : dec.decode(bytes.subarray(this.next - offset));
    this.next = end;
    this.push(fresh);
    return "appended";
  }

  private push(text: string): void {
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop() ?? "";
    for (const p of parts) this.lines.push(p);
    if (this.lines.length > MAX_LINES) {
      const cut = this.lines.length - MAX_LINES;
      this.lines.splice(0, cut);
      this.dropped += cut;
    }
  }

  /** What a terminal would show: a carriage return (progress bars) overwrites the line. */
  view(): string[] {
    const all = this.partial ? [...this.lines, this.partial] : this.lines;
    return all.map((l) => {
      if (!l.includes("\r")) return l;
      const segs = l.split("\r").filter((s) => s !== "");
      return segs[segs.length - 1] ?? "";
    });
  }
}
