// Prints the gzipped size of the built JS and CSS and fails above the budget (200 KB), and
// writes the total into the README's marked sentence (tests/ui/test_bundle.py checks they agree),
// so the README's number is this command's, never one typed by hand.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 200 * 1024;
const dir = new URL("../dist/assets/", import.meta.url).pathname;
let total = 0;
for (const name of readdirSync(dir)
  .filter((n) => /\.(js|css)$/.test(n))
  .sort()) {
  const gz = gzipSync(readFileSync(join(dir, name)), { level: 9 }).length;
  total += gz;
  console.log(`${name.padEnd(32)} ${(gz / 1024).toFixed(1).padStart(7)} KB gzipped`);
}
console.log(`${"total JS+CSS".padEnd(32)} ${(total / 1024).toFixed(1).padStart(7)} KB gzipped (budget ${BUDGET / 1024} KB)`);
const readme = new URL("../../README.md", import.meta.url).pathname;
const marked = /(<!-- npm run size -->)[^<]*(<!-- \/npm run size -->)/;
const text = readFileSync(readme, "utf8");
if (marked.test(text)) {
  const updated = text.replace(marked, `$1${Math.round(total / 1024)} KB$2`);
  if (updated !== text) {
    writeFileSync(readme, updated);
    console.log(`README.md: ${Math.round(total / 1024)} KB`);
  }
}
if (total > BUDGET) {
  console.error("over budget");
  process.exit(1);
}
