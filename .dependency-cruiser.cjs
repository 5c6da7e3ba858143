/**
 * The layers of src/, lowest first: a folder may import its own layer and the ones below it, never one
 * above, and nothing may form an import cycle. `npm test` runs this (test/layers.test.ts); the README's
 * layout section says why the layers are cut where they are.
 */
const LAYERS = [
  ['util'],
  ['config'],
  ['backend', 'data', 'tokenizer', 'parallel', 'corpus'],
  ['model'],
  ['run', 'task'],
  ['sample'],
  ['eval'],
  ['train'],
  ['report'],
  ['compare'],
  ['queue'],
  ['cli'],
];

const folders = (names) => `^src/(${names.join('|')})/`;

module.exports = {
  forbidden: [
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `${layer.join('-')}-imports-upward`,
      comment: `${layer.join(', ')} must not import ${LAYERS.slice(i + 1).flat().join(', ')}`,
      severity: 'error',
      from: { path: folders(layer) },
      to: { path: folders(LAYERS.slice(i + 1).flat()) },
    })),
    {
      name: 'no-cycles',
      comment: 'an import cycle (type-only imports count too)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'src-outside-layers',
      comment: 'every folder of src/ is in a layer (add a new one to LAYERS)',
      severity: 'error',
      from: { path: '^src/', pathNot: folders(LAYERS.flat()) },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    // type-only imports are dependencies too: a lower layer naming a higher one's types is still coupled to it
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs'] },
  },
};
