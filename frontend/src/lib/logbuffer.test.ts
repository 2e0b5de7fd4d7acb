import { describe, expect, it } from "vitest";
import { LogBuffer } from "./logbuffer";

describe("LogBuffer", () => {
  it("appends each byte once: repeats are duplicates, overlaps add only what is new", () => {
    const b = new LogBuffer(1);
    expect(b.apply(0, "one\ntw")).toBe("appended");
    expect(b.apply(0, "one\ntw")).toBe("duplicate");
    expect(b.apply(4, "two\nthree\n")).toBe("appended");
    expect(b.view()).toEqual(["one", "two", "three"]);
    expect(b.next).toBe(14);
  });

  it("reports a gap (bytes missing before the chunk) and keeps nothing of it", () => {
    const b = new LogBuffer(1);
    b.apply(0, "a\n");
    expect(b.apply(10, "far\n")).toBe("gap");
    expect(b.view()).toEqual(["a"]);
    expect(b.next).toBe(2);
  });

  it("counts offsets in UTF-8 bytes, not characters", () => {
    const b = new LogBuffer(1);
    b.apply(0, "ಕನ್ನಡ\n"); // 15 bytes + newline
    expect(b.next).toBe(16);
    expect(b.apply(12, "ಡ\nnext\n")).toBe("appended"); // its last character again, then more
    expect(b.view()).toEqual(["ಕನ್ನಡ", "next"]);
  });

  it("keeps an unfinished line as partial and shows it last", () => {
    const b = new LogBuffer(1);
    b.apply(0, "done\nhalf");
    expect(b.partial).toBe("half");
    expect(b.view()).toEqual(["done", "half"]);
    b.apply(9, " more\n");
    expect(b.view()).toEqual(["done", "half more"]);
  });

  it("shows a progress bar's last state: a carriage return overwrites the line", () => {
    const b = new LogBuffer(1);
    b.apply(0, "10%\r50%\r100%\r\nok\n");
    expect(b.view()).toEqual(["100%", "ok"]);
  });

  it("starts a tail view at the fetched offset and resumes after it", () => {
    const b = new LogBuffer(2);
    b.reset(100, "x\ny\n", 104);
    expect(b.start).toBe(100);
    expect(b.next).toBe(104);
    expect(b.apply(104, "z\n")).toBe("appended");
    expect(b.view()).toEqual(["x", "y", "z"]);
  });

  it("drops the oldest lines past its limit and counts them", () => {
    const b = new LogBuffer(1);
    b.apply(0, "l\n".repeat(20005));
    expect(b.lines).toHaveLength(20000);
    expect(b.dropped).toBe(5);
  });
});
