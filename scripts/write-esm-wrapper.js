'use strict';
// Writes dist/index.mjs: an ES module face over the CommonJS build, so `import` and `require`
// share one module instance (no dual-package hazard) and named imports work.
// Writes dist/index.d.mts beside it: the types of that ES module. Without it, `import` would be
// typed by the CommonJS dist/index.d.ts, which TypeScript then takes for a CommonJS module.
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const names = Object.keys(require(path.join(dist, 'index.js'))).filter((n) => n !== 'default');
const lines = [
  "import cjs from './index.js';",
  `export const { ${names.join(', ')} } = cjs;`,
  'export default cjs;',
  '',
];
fs.writeFileSync(path.join(dist, 'index.mjs'), lines.join('\n'));

// The same exports as index.mjs: every name of the CommonJS build (types included), and as the
// default the CommonJS module object, as index.mjs's default is. `import cjs = require(...)` types
// that object exactly under every module setting; `import cjs from` would need
// allowSyntheticDefaultImports under bundler resolution, and `import * as` would add a `default`.
const types = [
  "export * from './index.js';",
  "import cjs = require('./index.js');",
  'export default cjs;',
  '',
];
fs.writeFileSync(path.join(dist, 'index.d.mts'), types.join('\n'));
