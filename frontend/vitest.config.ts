import { defineConfig } from "vitest/config";

// Unit tests of the pure modules (src/lib/*.test.ts), in Node: `npm test` (make test runs it
// through tests/ui/test_frontend_units.py). The pages are tested in Chromium by tests/ui.
export default defineConfig({
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
