// Validate an AsyncAPI document with the AsyncAPI project's parser: `node validate.mjs FILE`.
// Prints one JSON line {"errors": [...], "warnings": n, "operations": [...]}; exit 1 on errors.
import { readFileSync } from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const text = readFileSync(process.argv[2], 'utf8');
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text);
const errors = diagnostics
  .filter((d) => d.severity === DiagnosticSeverity.Error)
  .map((d) => ({ code: d.code, message: d.message, path: d.path.join('/') }));
const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning);
const operations = document ? document.operations().all().map((op) => op.id()) : [];
console.log(
  JSON.stringify({
    errors,
    warnings: warnings.map((d) => `${d.code}: ${d.message} at ${d.path.join('/')}`),
    operations,
  }),
);
process.exit(errors.length || !document ? 1 : 0);
