#!/usr/bin/env node
'use strict';
const path = require('path');
const fs = require('fs');
const main = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (!fs.existsSync(main)) {
  process.stderr.write(`d8: ${main} is missing; run \`npm install\` (or \`npm run build\`) in ${path.dirname(__dirname)} first\n`);
  process.exit(2);
}
require(main).main(process.argv).catch((err) => {
  process.stderr.write(`d8: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
