import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classificationMetrics } from '../src/eval/metrics.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('metrics against hand-computed values (invalid outputs count as wrong)', () => {
  // class 0: P 1/2 R 1/2 F1 1/2; class 1: P 2/3 R 1 F1 4/5; class 2: never predicted -> 0
  const m = classificationMetrics([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, null, 0], ['a', 'b', 'c']);
  close(m.accuracy, 3 / 6);
  close(m.invalid_rate, 1 / 6);
  close(m.per_class[0].f1, 0.5);
  close(m.per_class[1].precision, 2 / 3);
  close(m.per_class[1].f1, 0.8);
  close(m.per_class[2].f1, 0);
  close(m.f1_weighted, (0.5 * 2 + 0.8 * 2) / 6);
  close(m.f1_macro, (0.5 + 0.8) / 3);
  assert.deepEqual(m.confusion, [
    [1, 1, 0, 0],
    [0, 2, 0, 0],
    [1, 0, 0, 1],
  ]);
});

test('macro F1 skips labels absent from gold and predictions; weighted F1 uses gold support', () => {
  const m = classificationMetrics([0, 0, 0, 1], [0, 0, 1, 1], ['x', 'y', 'z']);
  // x: P 1 R 2/3 F1 0.8; y: P 1/2 R 1 F1 2/3; z absent
  close(m.f1_macro, (0.8 + 2 / 3) / 2);
  close(m.f1_weighted, (0.8 * 3 + (2 / 3) * 1) / 4);
  close(m.accuracy, 0.75);
});
