import { describe, expect, it } from "vitest";
import { ema } from "./smooth";

describe("ema", () => {
  it("is the identity at weight 0", () => {
    expect(ema([3, 1, 4, 1, 5], 0)).toEqual([3, 1, 4, 1, 5]);
  });

  it("is debiased: the first point is itself, not dragged towards 0", () => {
    const out = ema([10, 10, 10], 0.9);
    for (const v of out) expect(v).toBeCloseTo(10, 10);
  });

  it("follows the TensorBoard recurrence", () => {
    const w = 0.6;
    const out = ema([1, 2], w);
    const last = (1 - w) * 1 * w + (1 - w) * 2;
    expect(out[1]).toBeCloseTo(last / (1 - w * w), 12);
  });

  it("keeps gaps as gaps and skips them in the average", () => {
    const out = ema([1, null, Number.NaN, 1], 0.5);
    expect(out[1]).toBeNull();
    expect(out[2]).toBeNull();
    expect(out[3]).toBeCloseTo(1, 12);
    expect(out).toHaveLength(4);
  });
});
