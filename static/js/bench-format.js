// Numbers as the benchmark report shows them: grouped thousands, a fixed number of digits.

export function num(v, digits = 0) {
  if (v == null || !Number.isFinite(Number(v))) return '–';
  return Number(v).toLocaleString('en', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** 12000 as 12k: offered rates on a crowded axis. */
export function short(v) {
  if (v >= 1000) return `${num(v / 1000, v % 1000 ? 1 : 0)}k`;
  return num(v);
}
