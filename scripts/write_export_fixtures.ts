/**
 * Writes the folders scripts/make_export_fixtures.py loads in Python transformers: `gta export` of the
 * models test/export.test.ts exports (gta's own tiny model, seeded; the tiny Hugging Face fixtures),
 * each with gta_fixture.json (the BOS id the logits start from), and texts.json.
 *   node dist/scripts/write_export_fixtures.js /tmp/exports
 */
import fs from 'node:fs';
import path from 'node:path';
import { exportHfFolder } from '../src/model/hf_export.js';
import { EXPORT_TEXTS, exportedModels } from '../test/helpers/export_models.js';
import { useWasm } from '../test/helpers/tiny.js';

const out = process.argv[2];
if (!out) throw new Error('usage: write_export_fixtures.js OUT_DIR');
await useWasm();
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'texts.json'), JSON.stringify(EXPORT_TEXTS));
for (const { name, model, tokenizer } of exportedModels()) {
  const dir = path.join(out, name);
  fs.rmSync(dir, { recursive: true, force: true });
  exportHfFolder(model, tokenizer, dir, { mergeLora: false });
  fs.writeFileSync(path.join(dir, 'gta_fixture.json'), JSON.stringify({ bos_id: tokenizer.bosId }));
  model.dispose();
  console.log(`${name} -> ${dir}`);
}
