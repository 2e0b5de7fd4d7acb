import { describe, expect, it } from "vitest";
import { fromSpec, runCount, toSpec } from "./AxisBuilder";

describe("axis builder <-> spec", () => {
  const spec = { name: "x", target: "kn", axes: { "method.finetuning_type": ["lora", "full"], "training.learning_rate": [1e-4, 2e-4] } };

  it("reads a grid and writes it back unchanged", () => {
    const a = fromSpec(spec);
    expect(a.mode).toBe("grid");
    expect(runCount(a)).toBe(4);
    expect(toSpec(spec, a)).toEqual(spec);
  });

  it("lists the combinations ticked, and reads them back", () => {
    const a = fromSpec(spec);
    const listed = toSpec(spec, { ...a, mode: "listed", off: [JSON.stringify({ "method.finetuning_type": "full", "training.learning_rate": 2e-4 })] });
    expect(listed.axes).toBeUndefined();
    expect(listed.combinations).toEqual([
      { "method.finetuning_type": "lora", "training.learning_rate": 1e-4 },
      { "method.finetuning_type": "lora", "training.learning_rate": 2e-4 },
      { "method.finetuning_type": "full", "training.learning_rate": 1e-4 },
    ]);
    const back = fromSpec(listed);
    expect(back.mode).toBe("listed");
    expect(runCount(back)).toBe(3);
    expect(toSpec(listed, back)).toEqual(listed);
  });

  it("leaves an axis without a field out of the spec", () => {
    const a = fromSpec(spec);
    const more = { ...a, axes: [...a.axes, { path: "", values: [] }] };
    expect(toSpec(spec, more)).toEqual(spec);
    expect(runCount(more)).toBe(4);
  });
});
