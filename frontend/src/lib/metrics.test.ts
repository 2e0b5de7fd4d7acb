import { describe, expect, it } from "vitest";
import type { Metrics, RunEvent } from "../api/types";
import { ALL_KEYS, addEvent, fromApi, type Store, tokensAxis, wantedKeys } from "./metrics";

const ev = (kind: string, step: number | null, data: Record<string, unknown>, attempt = 1): RunEvent => ({ seq: 0, time: 0, kind, step, attempt, data });

describe("metrics", () => {
  it("asks for the fixed keys plus every held-out set's, not other eval keys", () => {
    const keys = wantedKeys(["loss", "eval_en_bits_per_char", "eval_kn_loss", "eval_runtime", "epoch"]);
    expect(keys).toEqual([...ALL_KEYS, "eval_en_bits_per_char", "eval_kn_loss"]);
  });

  it("copies the API's series (tokens missing: nulls)", () => {
    const m: Metrics = { keys: ["loss"], attempts: [], stages: [], series: { loss: { step: [1, 2], value: [3, 2], tokens_seen: [10, 20], time: [0, 1] } } };
    const store = fromApi(m, 2);
    expect(store.loss).toEqual({ step: [1, 2], value: [3, 2], tokens: [10, 20], attempt: 2 });
    m.series.loss.step.push(3);
    expect(store.loss.step).toEqual([1, 2]);
  });

  it("adds a log event's known numbers and drops a repeat of the same attempt", () => {
    const store: Store = {};
    expect(addEvent(store, ev("log", 5, { loss: 2.5, learning_rate: 1e-4, tokens_seen: 500, note: "x" }))).toBe(true);
    expect(store.loss).toEqual({ step: [5], tokens: [500], value: [2.5], attempt: 1 });
    expect(store.learning_rate.value).toEqual([1e-4]);
    expect(addEvent(store, ev("log", 5, { loss: 9 }))).toBe(false);
    expect(addEvent(store, ev("checkpoint", 6, { loss: 1 }))).toBe(false);
    expect(addEvent(store, ev("log", null, { loss: 1 }))).toBe(false);
    expect(store.loss.value).toEqual([2.5]);
  });

  it("takes an eval event's held-out sets by their eval_<set>_<what> names", () => {
    const store: Store = {};
    addEvent(store, ev("eval", 10, { eval_loss: 3, eval_en_bits_per_char: 1.2, eval_runtime: 4 }));
    expect(Object.keys(store).sort()).toEqual(["eval_en_bits_per_char", "eval_loss"]);
  });

  it("lets a resumed attempt replace the points it trains again", () => {
    const store: Store = {};
    for (const s of [1, 2, 3, 4]) addEvent(store, ev("log", s, { loss: s }));
    expect(addEvent(store, ev("log", 3, { loss: 30 }, 2))).toBe(true);
    expect(store.loss.step).toEqual([1, 2, 3]);
    expect(store.loss.value).toEqual([1, 2, 30]);
    expect(store.loss.attempt).toBe(2);
  });

  it("fills tokens from the training loss for points that lack them (evaluations)", () => {
    const store: Store = {
      loss: { step: [10, 20], tokens: [1000, 2000], value: [1, 1], attempt: 1 },
      eval_loss: { step: [0, 15, 20, 5], tokens: [null, null, 2500, null], value: [1, 1, 1, 1], attempt: 1 },
    };
    // step 0: nothing trained yet; 15: scaled from step 10; 20: its own; 5: before any train point
    expect(tokensAxis(store, store.eval_loss)).toEqual([0, 1500, 2500, null]);
  });
});
