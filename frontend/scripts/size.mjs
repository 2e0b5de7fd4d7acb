// Prints the gzipped size of the built JS and CSS and fails above the budget (200 KB).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 200 * 1024;
const dir = new URL("../dist/assets/", import.meta.url).pathname;
let total = 0;
for (const name of readdirSync(dir).filter((n) => /\.(js|css)$/.test(n)).sort()) {
  const gz = gzipSync(readFileSync(join(dir, name)), { level: 9 }).length;
  total += gz;
  console.log(`${name.padEnd(32)} ${(gz / 1024).toFixed(1).padStart(7)} KB gzipped`);
}
console.log(`${"total JS+CSS".padEnd(32)} ${(total / 1024).toFixed(1).padStart(7)} KB gzipped (budget ${BUDGET / 1024} KB)`);
if (total > BUDGET) {
  console.error("over budget");
  process.exit(1);
}
