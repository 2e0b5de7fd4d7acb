import { describe, expect, it } from "vitest";
import { DASH, ago, bytes, compact, duration, int, num, parseTime, remaining, runSeconds, totalSeconds } from "./format";

describe("numbers", () => {
  it("shows unknown as a dash, never a made-up value", () => {
    for (const f of [num, int, compact, bytes, duration]) {
      expect(f(null)).toBe(DASH);
      expect(f(undefined)).toBe(DASH);
    }
    expect(num(Number.NaN)).toBe(DASH);
    expect(int(Number.POSITIVE_INFINITY)).toBe(DASH);
  });

  it("rounds to significant digits and switches to exponents at the extremes", () => {
    expect(num(2.345678, 4)).toBe("2.346");
    expect(num(1234.5678)).toBe("1,230");
    expect(num(0)).toBe("0");
    expect(num(0.0001234)).toBe("1.23e-4");
    expect(num(12345678)).toBe("1.23e+7");
  });

  it("groups integers and compacts large counts", () => {
    expect(int(1234567.4)).toBe("1,234,567");
    expect(compact(1234567)).toBe("1.23M");
    expect(compact(950)).toBe("950");
  });

  it("sizes in binary units", () => {
    expect(bytes(0)).toBe("0 B");
    expect(bytes(1023)).toBe("1023 B");
    expect(bytes(1536)).toBe("1.5 KB");
    expect(bytes(5 * 1024 ** 3)).toBe("5.0 GB");
    expect(bytes(3 * 1024 ** 5)).toBe("3072.0 TB");
  });
});

describe("times", () => {
  it("formats durations at the largest two units", () => {
    expect(duration(12.4)).toBe("12s");
    expect(duration(185)).toBe("3m 05s");
    expect(duration(3720)).toBe("1h 02m");
    expect(duration(-1)).toBe(DASH);
  });

  it("reads a time without a zone as UTC", () => {
    expect(parseTime("2026-01-02T03:04:05")).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(parseTime("2026-01-02T03:04:05Z")).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(parseTime("2026-01-02T05:04:05+02:00")).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(parseTime("not a time")).toBeNull();
    expect(parseTime(null)).toBeNull();
  });

  const t0 = "2026-01-02T00:00:00Z";
  const at = (s: number) => Date.parse(t0) + s * 1000;

  it("counts a run's seconds to its end, or to now while it runs", () => {
    expect(runSeconds(t0, "2026-01-02T00:01:40Z")).toBe(100);
    expect(runSeconds(t0, null, at(30))).toBe(30);
    expect(runSeconds(null, null)).toBeNull();
  });

  it("adds the running attempt's clock to the ended attempts' seconds", () => {
    const run = { status: "running", started_at: t0, finished_at: null, attempts_seconds: 50, duration_seconds: 55 };
    expect(totalSeconds(run, at(20))).toBe(70);
    // Queued (between attempts): no clock runs, the server's figure stands.
    expect(totalSeconds({ ...run, status: "queued" }, at(20))).toBe(55);
    expect(totalSeconds({ ...run, status: "succeeded", duration_seconds: null }, at(20))).toBe(50);
  });

  it("counts down to an ETA and never below zero", () => {
    expect(remaining("2026-01-02T00:01:00Z", 999, at(20))).toBe(40);
    expect(remaining("2026-01-02T00:01:00Z", 999, at(90))).toBe(0);
    expect(remaining(null, 12, at(0))).toBe(12);
  });

  it("says 'just now' for a time a little in the future (two clocks)", () => {
    expect(ago(t0, at(0.5))).toBe("just now");
    expect(ago(t0, at(-5))).toBe("just now");
    expect(ago(t0, at(65))).toBe("1m 05s ago");
  });
});
