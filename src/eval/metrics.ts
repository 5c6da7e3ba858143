/**
 * Classification metrics from gold labels and predictions (null = an invalid output, which counts as
 * wrong). Definitions follow scikit-learn: weighted F1 weights each class's F1 by its support in the
 * gold labels; a class with no predictions has precision 0.
 */
export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationMetrics {
  n: number;
  accuracy: number;
  f1_weighted: number;
  f1_macro: number;
  invalid_rate: number;
  per_class: ClassMetrics[];
  /** confusion[gold][predicted]; the last column counts invalid outputs. */
  confusion: number[][];
}

export function classificationMetrics(gold: number[], pred: (number | null)[], labels: string[]): ClassificationMetrics {
  if (gold.length !== pred.length) throw new Error('gold and predictions differ in length');
  const K = labels.length;
  const confusion = Array.from({ length: K }, () => new Array<number>(K + 1).fill(0));
  let correct = 0;
  let invalid = 0;
  for (let i = 0; i < gold.length; i++) {
    const p = pred[i];
    if (p === null) invalid++;
    else if (p === gold[i]) correct++;
    confusion[gold[i]][p === null ? K : p]++;
  }
  const n = gold.length;
  const perClass: (ClassMetrics & { predicted: number })[] = labels.map((label, k) => {
    const tp = confusion[k][k];
    const support = confusion[k].reduce((a, b) => a + b, 0);
    let predicted = 0;
    for (let g = 0; g < K; g++) predicted += confusion[g][k];
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support, predicted };
  });
  // Macro F1 over the labels that occur in gold or predictions (scikit-learn's default).
  const present = perClass.filter((c) => c.support > 0 || c.predicted > 0);
  return {
    n,
    accuracy: n > 0 ? correct / n : 0,
    f1_weighted: n > 0 ? perClass.reduce((a, c) => a + c.f1 * c.support, 0) / n : 0,
    f1_macro: present.length > 0 ? present.reduce((a, c) => a + c.f1, 0) / present.length : 0,
    invalid_rate: n > 0 ? invalid / n : 0,
    per_class: perClass.map(({ predicted: _, ...c }) => c),
    confusion,
  };
}
