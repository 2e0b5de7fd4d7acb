import { defineConfig } from "vite";

// The API serves dist/ at "/" (hash routing, so no server-side routes are needed).
// `npm run dev` proxies /api to a panel started with `python -m backend.cli serve`.
export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: false },
  server: { proxy: { "/api": process.env.CPT_API_URL ?? "http://127.0.0.1:8000" } },
});
