// TensorBoard's debiased exponential moving average, so early points are not dragged to 0.

export function ema(values: (number | null)[], weight: number): (number | null)[] {
  const out: (number | null)[] = new Array(values.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) {
      out[i] = null;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    const debias = weight === 0 ? 1 : 1 - weight ** n;
    out[i] = last / debias;
  }
  return out;
}
