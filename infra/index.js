// Entry point of the Pulumi program (Pulumi.yaml: `main: infra/`). The program itself is TypeScript
// (infra/program.ts) compiled by `npm install` / `npm run build` into dist/: the Pulumi Node.js
// runtime's own TypeScript support is far too old for this code base, so it runs the compiled output.
'use strict';
const path = require('path');
const fs = require('fs');

const compiled = path.join(__dirname, '..', 'dist', 'infra', 'program.js');
if (!fs.existsSync(compiled)) {
  const pulumi = require('@pulumi/pulumi');
  throw new pulumi.RunError(`${compiled} does not exist: run \`npm install\` (or \`npm run build\`) in ${path.dirname(__dirname)} first`);
}
module.exports = () => require(compiled).program();
